import numpy as np
import pytest
from PIL import Image

from reason_iad.annotations import AnnotationStore
from reason_iad.errors import UserError
from reason_iad.exports import export_mmad
from reason_iad.mmad import load_mmad


def _image(colour):
    return Image.new("RGB", (64, 48), colour)


def test_annotations_store_validate_and_export_as_mmad_the_harness_reads(tmp_path):
    store = AnnotationStore(tmp_path / "db")
    mask = np.zeros((48, 64), np.uint8)
    mask[2:10, 2:12] = 255  # top left
    store.add(_image((90, 90, 90)), "normal", "Mine", "gear", author="ana")
    store.add(_image((90, 90, 90)), "normal", "Mine", "gear", author="ana")
    store.add(_image((200, 90, 90)), "defective", "Mine", "gear", author="ana", defect="chip", mask=mask)
    store.add(_image((90, 90, 200)), "defective", "Mine", "gear", author="bo", defect="rust")
    store.add(_image((10, 10, 10)), "normal", "Mine", "shaft", author="bo")
    store.add(_image((12, 10, 10)), "normal", "Mine", "shaft", author="bo")
    with pytest.raises(UserError, match="defect type"):
        store.add(_image((1, 1, 1)), "defective", "Mine", "gear", author="ana")
    with pytest.raises(UserError, match="label"):
        store.add(_image((1, 1, 1)), "broken", "Mine", "gear", author="ana")
    assert len(store.list()) == 6
    assert export_mmad(store.list(), tmp_path / "export") == 6
    records = load_mmad(tmp_path / "export" / "mmad.json")
    chip = next(r for k, r in records.items() if "/chip/" in k)
    types = {q.type: q for q in chip.conversation}
    assert set(types) == {"Anomaly Detection", "Object Classification", "Defect Classification", "Defect Localization"}
    location = types["Defect Localization"]
    assert location.options[location.answer] == "top left"
    assert (tmp_path / "export" / chip.mask_path).is_file() and len(chip.random_templates) == 2

    from reason_iad.eval.reader import read_eval_set

    items = read_eval_set(tmp_path / "export", shots=1).items
    assert len(items) == sum(len(r.conversation) for r in records.values())
    with pytest.raises(UserError, match="not empty"):
        export_mmad(store.list(), tmp_path / "export")
