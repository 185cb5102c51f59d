import pytest
from PIL import Image

from reason_iad.errors import UserError
from reason_iad.reasoning.prompt import KNOWLEDGE_HEADER, TEMPLATE_HEADER, Question, build_messages


def test_mmad_layout_order_with_knowledge_and_template():
    query, template = Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8), (9, 9, 9))
    [message] = build_messages(Question.anomaly(), query, template, knowledge=["<Scratch>\nThin line."])
    parts = message.parts
    assert message.role == "user"
    assert parts.index(template) < parts.index(query)
    text_before_template = " ".join(p for p in parts[: parts.index(template)] if isinstance(p, str))
    assert KNOWLEDGE_HEADER in text_before_template and "Thin line." in text_before_template
    assert TEMPLATE_HEADER in text_before_template
    assert parts[-1].endswith("A. Yes.\nB. No.")


def test_zero_shot_without_knowledge_has_one_image_and_no_headers():
    [message] = build_messages(Question.anomaly(), Image.new("RGB", (8, 8)))
    images = [p for p in message.parts if isinstance(p, Image.Image)]
    text = " ".join(p for p in message.parts if isinstance(p, str))
    assert len(images) == 1
    assert KNOWLEDGE_HEADER not in text and TEMPLATE_HEADER not in text


@pytest.mark.parametrize(
    "text, options, message",
    [
        ("  ", (("A", "x"), ("B", "y")), "empty"),
        ("Q?", (("A", "x"),), "at least two"),
        ("Q?", (("A", "x"), ("A", "y")), "duplicate"),
        ("Q?", (("A", "x"), ("C", "y")), "in order"),
        ("Q?", (("A", "x"), ("B", " ")), "option B is empty"),
        ("Q" * 3000, (("A", "x"), ("B", "y")), "longer than"),
    ],
)
def test_bad_questions_are_refused_clearly(text, options, message):
    with pytest.raises(UserError, match=message):
        Question(text, options)


def test_one_parser_reads_typed_questions_from_the_cli_and_the_studio():
    from reason_iad.reasoning.prompt import Question

    studio = Question.parse("Which defect?", ["A. Crack", "Hole", "C) Stain"])
    cli = Question.parse("Which defect?", ["A=Crack", "B=Hole", "C=Stain"])
    assert studio == cli and studio.options == (("A", "Crack"), ("B", "Hole"), ("C", "Stain"))
    assert Question.parse("", []) == Question.anomaly() and Question.parse(None) == Question.anomaly()
    assert Question.parse("Q?", ["A thin line", "B. A thick line"]).options == (
        ("A", "A thin line"),
        ("B", "A thick line"),
    )
    with pytest.raises(UserError, match="without a question"):
        Question.parse("", ["A=x"])
    with pytest.raises(UserError, match="duplicate"):
        Question.parse("Q?", ["A=x", "A=y"])
    with pytest.raises(UserError, match="at least two"):
        Question.parse("Q?", ["only one"])
