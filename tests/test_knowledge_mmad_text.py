"""MMAD's `domain_knowledge.json` survives import -> export byte for byte and reaches the prompt as MMAD puts it.

The fixture is hand-written (MMAD's data is non-commercial) but copies the real file's format: nested
{dataset: {category: {defect_or_good: text}}}, every text ` <Title>\\n Description: ...` with a space before the
title and before every line, `- ` bullet lines, a `Description: \\n` line whose text starts on the next line, blank
` \\n` lines, trailing blanks, non-ASCII characters; `json.dump(indent=4)`, no final newline.
"""

import json

from PIL import Image

from knowledge_helpers import make_store
from reason_iad.eval.reader import read_eval_set
from reason_iad.knowledge.entry import make_entry, split_mmad_text
from reason_iad.knowledge.search import retrieve
from reason_iad.knowledge.transfer import export_domain_knowledge, import_entries, read_import_file
from reason_iad.reasoning.prompt import KNOWLEDGE_HEADER, Question, build_messages

MMAD_LIKE = {
    "MVTec": {
        "bottle": {
            "broken_large": " <Large Breakage>\n Description: A large piece of the bottle rim is missing, leaving a "
            "jagged, irregular edge.\n - Location: usually at the rim, seen from above.\n - Contrast: the broken "
            "surface is brighter than the glass around it. ",
            "contamination": " <Foreign Matter>\n Description: Dark particles or smears lie inside the bottle.\n \n "
            "Overall, the contamination breaks the uniform, dark interior.",
            "good": " <Normal Characteristics>\n Description: A round, intact rim with an even, dark interior and a "
            "uniform reflection ring – no marks at 0° or 90°.",
        },
        "zipper": {
            "combined": " <Zipper Defects>\n Description: Several defects at once:\n - Broken teeth: teeth are "
            "missing or split.\n - Fabric border: frayed edges. \n \n Overall, the zipper would fail in use.",
            "good": " <Normal Characteristics>\n Description: Evenly spaced, interlocking teeth on dark woven "
            "fabric.\n Minor lint is normal noise and not a defect.",
        },
    },
    "VisA": {
        "fryum": {
            "bad": " <Surface Defects>\n Description: Cracks, burnt spots or missing pieces on the wheel-shaped snack.",
            "good": " <Normal Characteristics>\n Description: \nThe objects are circular with six evenly spaced "
            "spokes. \nSlight shading differences are normal. ",
        },
    },
}


def _write(path, data):
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")  # MMAD's own formatting
    return path


def _imported(tmp_path):
    store = make_store(tmp_path / "kb", seed=[], image=False)
    entries, refused = read_import_file(_write(tmp_path / "domain_knowledge.json", MMAD_LIKE), author="ana")
    assert not refused
    import_entries(store, entries, refused, author="ana")
    return store


def test_mmad_file_round_trips_byte_for_byte(tmp_path):
    original = (_write(tmp_path / "original.json", MMAD_LIKE)).read_bytes()
    assert b"\\u2013" in original and not original.endswith(b"\n")  # the fixture is formatted as MMAD's file is
    store = _imported(tmp_path)
    export_domain_knowledge(store, tmp_path / "exported.json")
    assert (tmp_path / "exported.json").read_bytes() == original
    fryum = store.get("visa/fryum/good").entry
    assert fryum.title == "Normal Characteristics" and fryum.mmad_text == MMAD_LIKE["VisA"]["fryum"]["good"]
    again = read_import_file(tmp_path / "exported.json", author="ana")
    assert import_entries(store, *again, author="ana").version is None  # re-import: all unchanged


def test_the_prompt_gets_mmads_texts_joined_as_mmads_scripts_join_them(tmp_path):
    store = _imported(tmp_path)
    texts = retrieve(store, Image.new("RGB", (8, 8)), "bottle", "MVTec").texts  # no embedder ranks: all entries
    assert sorted(texts) == sorted(MMAD_LIKE["MVTec"]["bottle"].values())
    key = "MVTec/bottle/test/good/0.png"
    (tmp_path / key).parent.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / key)
    question = {"Question": "Q?", "Options": {"A": "Yes.", "B": "No."}, "Answer": "B", "type": "Anomaly Detection"}
    (tmp_path / "mmad.json").write_text(json.dumps({key: {"conversation": [question]}}))
    knowledge = read_eval_set(tmp_path, shots=0, knowledge="all").knowledge[("MVTec", "bottle")]
    [message] = build_messages(Question.anomaly(), Image.new("RGB", (8, 8)), knowledge=knowledge)
    mmad_block = "\n".join(MMAD_LIKE["MVTec"]["bottle"].values())  # qwen2_5_vl_query.py's {domain_knowledge}
    assert message.parts[1] == f"\n{KNOWLEDGE_HEADER}\n{mmad_block}"


def test_project_layout_stays_a_plain_text_and_a_title_edit_rebuilds_the_title_line():
    assert split_mmad_text("scratch", "<Scratch>\nDescription: A thin line.") == ("Scratch", "A thin line.")
    value = MMAD_LIKE["MVTec"]["bottle"]["broken_large"]
    title, text = split_mmad_text("broken_large", value)
    entry = make_entry(
        id="mvtec/bottle/broken_large",
        dataset="MVTec",
        category="bottle",
        defect="broken_large",
        title=title,
        text=text,
    )
    assert entry.text == value and entry.mmad_text == value
    renamed = entry.model_copy(update={"title": "Rim breakage"})
    assert renamed.mmad_text.startswith("<Rim breakage>\nDescription: A large piece") and value not in renamed.mmad_text
