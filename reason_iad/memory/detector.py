"""`VisualMemory`: curate normal exemplars per category and inspect images against them.

    memory = VisualMemory("/data/reason-iad/knowledge.lance")        # any LanceDB folder
    memory.add_exemplars("SynthIAD", "carpet", ["good1.png", "good2.png"])
    evidence = memory.inspect("query.png", "SynthIAD", "carpet")    # AnomalyEvidence

Adding or removing exemplars updates the category's bank (one new version of the patch table) and its
calibration. A bank that no longer matches its exemplars (e.g. after an interrupted write) is rebuilt when it is
next used.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from reason_iad.config import MemoryConfig
from reason_iad.errors import UserError
from reason_iad.images import load_image, png_bytes
from reason_iad.memory import bank as banks
from reason_iad.memory.backbone import Backbone, load_backbone
from reason_iad.memory.calibration import Calibration, fit_calibration
from reason_iad.memory.evidence import AnomalyEvidence, locate_peak
from reason_iad.memory.scoring import RawAnomaly, patch_grid_distances, raw_anomaly
from reason_iad.memory.store import CalibrationRecord, ExemplarRecord, MemoryStore, now

MIN_EXEMPLAR_SIDE = 32  # smaller images carry too few pixels for patch features
MAX_NAME_LENGTH = 200
ImageSource = str | Path | bytes | Image.Image


@dataclass(frozen=True)
class BankInfo:
    """The state of one category's memory bank.

    Attributes:
        dataset: Dataset name.
        category: Category name.
        backbone: Feature extractor name.
        exemplar_ids: Ids of the normal exemplars the bank holds, sorted.
        num_patches: Patch vectors kept (after the coreset).
        source_patches: Patch vectors extracted before the coreset.
        version: Patch-table version written by the category's last bank change (0: never built).
        calibration: The score scale, None with fewer than two calibration scores.
        skipped: Images of the last add that were already stored (duplicates), by label.
    """

    dataset: str
    category: str
    backbone: str
    exemplar_ids: tuple[str, ...]
    num_patches: int
    source_patches: int
    version: int
    calibration: Calibration | None
    skipped: tuple[str, ...] = ()


def _check_name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_LENGTH or not value.isprintable():
        raise UserError(f"{kind} must be a non-empty printable name of at most {MAX_NAME_LENGTH} characters")
    return value


def exemplar_id(image: Image.Image) -> str:
    """Content id of a normalised RGB image (same pixels, same id)."""
    digest = hashlib.sha256(f"{image.size}".encode() + image.tobytes())
    return digest.hexdigest()[:16]


def prepare_exemplar(source: ImageSource, label: str) -> Image.Image:
    """Read and normalise one exemplar (RGB, orientation, bit depth), refusing unusable ones clearly."""
    image = load_image(source, name=label)
    if min(image.size) < MIN_EXEMPLAR_SIDE:
        raise UserError(
            f"exemplar {label} is {image.size[0]}x{image.size[1]}; normal exemplars need at least "
            f"{MIN_EXEMPLAR_SIDE} pixels per side"
        )
    return image


class VisualMemory:
    """Normal exemplars, patch banks and calibrations per (dataset, category) in one LanceDB folder."""

    def __init__(self, uri: str | Path, config: MemoryConfig | None = None, backbone: Backbone | None = None) -> None:
        self.config = config or MemoryConfig()
        self.backbone = backbone or load_backbone(self.config.backbone, self.config.image_size, self.config.device)
        self.store = MemoryStore(uri, self.backbone.name, self.backbone.feature_dim)
        self._banks: dict[tuple[str, str], tuple[int, banks.PatchSet]] = {}
        self._device_banks: dict[tuple[str, str], tuple[int, torch.Tensor]] = {}  # search copies off the CPU
        self.device = self.config.device
        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"

    # ------------------------------------------------------------------ curation
    def add_exemplars(
        self, dataset: str, category: str, images: Sequence[ImageSource], labels: Sequence[str] | None = None
    ) -> BankInfo:
        """Add normal exemplars to a category and update its bank and calibration.

        Args:
            dataset: Dataset name.
            category: Category name.
            images: Paths, encoded bytes or PIL images; all are checked before anything is written.
            labels: Display names (default: file names or "exemplar N").

        Returns:
            The updated bank; images already stored are skipped and listed in `skipped`.

        Raises:
            UserError: A bad name, an unreadable, truncated or too small image (nothing is written then).
        """
        dataset, category = _check_name("dataset", dataset), _check_name("category", category)
        labels = list(labels) if labels is not None else [_default_label(s, i) for i, s in enumerate(images)]
        if len(labels) != len(images):
            raise UserError(f"got {len(images)} images but {len(labels)} labels")
        prepared = [prepare_exemplar(source, label) for source, label in zip(images, labels, strict=True)]
        with self.store.lock:
            known = {r.exemplar_id for r in self.store.list_exemplars(dataset, category)}
            fresh: dict[str, tuple[str, Image.Image]] = {}
            skipped = []
            for label, image in zip(labels, prepared, strict=True):
                key = exemplar_id(image)
                if key in known or key in fresh:
                    skipped.append(label)
                else:
                    fresh[key] = (label, image)
            if fresh:
                self.store.add_exemplars(
                    [_exemplar_row(key, dataset, category, label, image) for key, (label, image) in fresh.items()]
                )
                self._update_bank(dataset, category, {k: image for k, (_, image) in fresh.items()})
            info = self.bank_info(dataset, category)
        return BankInfo(**{**info.__dict__, "skipped": tuple(skipped)})

    def remove_exemplars(self, dataset: str, category: str, exemplar_ids: Sequence[str]) -> BankInfo:
        """Remove exemplars by id and rebuild the category's bank (unknown ids are refused)."""
        with self.store.lock:
            known = {r.exemplar_id for r in self.store.list_exemplars(dataset, category)}
            unknown = sorted(set(exemplar_ids) - known)
            if unknown:
                raise UserError(f"{dataset}/{category} has no exemplar {unknown[0]!r}")
            if exemplar_ids:
                self.store.delete_exemplars(dataset, category, list(exemplar_ids))
                self.rebuild(dataset, category)
            return self.bank_info(dataset, category)

    def rebuild(self, dataset: str, category: str) -> BankInfo:
        """Rebuild a category's bank and calibration from its stored exemplars (one new patch-table version)."""
        with self.store.lock:
            images = self._exemplar_images(dataset, category)
            views = banks.views_per_exemplar(len(images), self.config)
            patches = banks.extract_patches(self.backbone, images, views)
            size = banks.coreset_size(len(patches), self.config)
            kept = banks.select_coreset(patches, size) if size is not None else patches
            self._write_bank(dataset, category, images, kept, len(patches), views, replace=True)
            return self.bank_info(dataset, category)

    def _update_bank(self, dataset: str, category: str, new: dict[str, Image.Image]) -> None:
        record = self.store.read_calibration(dataset, category)
        current = {r.exemplar_id for r in self.store.list_exemplars(dataset, category)}
        if record is None or set(record.exemplar_ids) != current - set(new):  # first build, or a stale bank
            self.rebuild(dataset, category)
            return
        views = banks.views_per_exemplar(len(current), self.config)
        patches = banks.extract_patches(self.backbone, new, views)
        total = record.source_patches + len(patches)
        size = banks.coreset_size(total, self.config)
        if size is not None and record.num_patches == record.source_patches:  # the bank outgrows "whole"
            self.rebuild(dataset, category)
            return
        existing = self._bank(dataset, category, record)
        if size is not None:
            patches = banks.select_coreset(patches, max(1, round(self.config.coreset_ratio * len(patches))), existing)
        images = self._exemplar_images(dataset, category)
        self._write_bank(
            dataset,
            category,
            images,
            banks.PatchSet.concat([existing, patches]),
            total,
            views,
            replace=False,
            appended=patches,
        )

    def _write_bank(
        self,
        dataset: str,
        category: str,
        images: dict[str, Image.Image],
        bank: banks.PatchSet,
        source_patches: int,
        views: int,
        replace: bool,
        appended: banks.PatchSet | None = None,
    ) -> None:
        rows = appended if appended is not None else bank
        table = self.store.patch_rows(dataset, category, rows.exemplar_ids, rows.patches, rows.vectors.numpy())
        version = self.store.replace_bank(dataset, category, table) if replace else self.store.append_bank(table)
        scores = banks.leave_one_out_scores(self.backbone, images, bank, views, self.config) if len(bank) else []
        self.store.write_calibration(
            CalibrationRecord(
                dataset=dataset,
                category=category,
                bank_version=version,
                exemplar_ids=tuple(sorted(images)),
                source_patches=int(source_patches),
                num_patches=len(bank),
                scores=tuple(scores),
                false_positive_rate=self.config.false_positive_rate,
                updated_at=now(),
            )
        )
        self._banks[(dataset, category)] = (version, bank)
        self.store.ensure_index(self.config.index_min_rows)

    # ------------------------------------------------------------------ reads
    def exemplars(self, dataset: str, category: str) -> list[ExemplarRecord]:
        """The category's normal exemplars (without pixels), sorted by id."""
        return self.store.list_exemplars(dataset, category)

    def exemplar_image(self, dataset: str, category: str, exemplar: str) -> Image.Image:
        """One stored exemplar image."""
        found = self.store.exemplar_png(dataset, category, [exemplar])
        if exemplar not in found:
            raise UserError(f"{dataset}/{category} has no exemplar {exemplar!r}")
        return Image.open(io.BytesIO(found[exemplar])).convert("RGB")

    def categories(self) -> list[tuple[str, str]]:
        """(dataset, category) pairs with exemplars."""
        return self.store.categories()

    def versions(self) -> list[int]:
        """Versions of the patch table (every bank change adds one)."""
        return self.store.patch_versions()

    def bank_info(self, dataset: str, category: str) -> BankInfo:
        """The category's bank as stored (empty when it has no exemplars)."""
        record = self.store.read_calibration(dataset, category)
        if record is None:
            return BankInfo(dataset, category, self.backbone.name, (), 0, 0, 0, None)
        calibration = self._calibration(record)
        return BankInfo(
            dataset,
            category,
            self.backbone.name,
            record.exemplar_ids,
            record.num_patches,
            record.source_patches,
            record.bank_version,
            calibration,
        )

    def _calibration(self, record: CalibrationRecord) -> Calibration | None:
        if len(record.scores) < 2:
            return None
        return fit_calibration(record.scores, self.config.false_positive_rate)

    def _exemplar_images(self, dataset: str, category: str) -> dict[str, Image.Image]:
        ids = [r.exemplar_id for r in self.store.list_exemplars(dataset, category)]
        blobs = self.store.exemplar_png(dataset, category, ids)
        return {key: Image.open(io.BytesIO(blobs[key])).convert("RGB") for key in sorted(blobs)}

    def _bank(self, dataset: str, category: str, record: CalibrationRecord) -> banks.PatchSet:
        cached = self._banks.get((dataset, category))
        if cached is not None and cached[0] == record.bank_version:
            return cached[1]
        vectors, ids, patches = self.store.read_bank(dataset, category)
        bank = banks.PatchSet(torch.from_numpy(vectors.copy()), ids, patches)
        self._banks[(dataset, category)] = (record.bank_version, bank)
        return bank

    def _search_bank(self, dataset: str, category: str, record: CalibrationRecord) -> torch.Tensor:
        """The bank's vectors on the search device (a cached copy when that is not the CPU)."""
        vectors = self._bank(dataset, category, record).vectors
        if self.device == "cpu":
            return vectors
        cached = self._device_banks.get((dataset, category))
        if cached is None or cached[0] != record.bank_version:
            cached = (record.bank_version, vectors.to(self.device))
            self._device_banks[(dataset, category)] = cached
        return cached[1]

    def _ready_record(self, dataset: str, category: str) -> CalibrationRecord:
        """The category's calibration record, rebuilding a bank that does not match the stored exemplars."""
        record = self.store.read_calibration(dataset, category)
        current = tuple(r.exemplar_id for r in self.store.list_exemplars(dataset, category))
        if not current:
            raise UserError(f"the visual memory has no normal exemplars for {dataset}/{category}; add some first")
        if record is None or record.exemplar_ids != current:
            self.rebuild(dataset, category)
            record = self.store.read_calibration(dataset, category)
        return record

    # ------------------------------------------------------------------ inspection
    def score(self, image: ImageSource, dataset: str, category: str) -> RawAnomaly:
        """Uncalibrated anomaly map and score of one image against the category's bank."""
        record = self._ready_record(dataset, category)
        return self._raw(load_image(image, name="query image"), dataset, category, record)

    def _raw(self, picture: Image.Image, dataset: str, category: str, record: CalibrationRecord) -> RawAnomaly:
        features = self.backbone.patch_features([picture])[0]  # [D, h, w]
        use_ann = self.config.search == "ann" or (
            self.config.search == "auto" and record.num_patches >= self.config.ann_min_patches
        )
        if use_ann:
            queries = features.permute(1, 2, 0).reshape(-1, features.shape[0]).numpy()
            found = self.store.search_nearest(dataset, category, queries)
            distances = torch.from_numpy(found).view(features.shape[1], features.shape[2])
        else:
            distances = patch_grid_distances(features.to(self.device), self._search_bank(dataset, category, record))
        c = self.config
        return raw_anomaly(distances, self.backbone.image_size, c.smoothing_sigma, c.score_mode, c.score_top_k)

    def inspect(self, image: ImageSource, dataset: str, category: str) -> AnomalyEvidence:
        """Anomaly evidence for one image: calibrated map and score, verdict, peak region and box.

        Args:
            image: A path, encoded bytes or a PIL image (normalised like every input image).
            dataset: Dataset of the bank to compare with.
            category: Category of the bank to compare with.

        Returns:
            The evidence, its map at the image's size.

        Raises:
            UserError: Unreadable image, no exemplars for the category, or too few to calibrate.
        """
        picture = load_image(image, name="query image")
        record = self._ready_record(dataset, category)
        raw = self._raw(picture, dataset, category, record)
        calibration = self._calibration(record)
        if calibration is None:
            raise UserError(
                f"{dataset}/{category} needs at least two normal exemplars (or views_per_exemplar > 1) "
                "before its anomaly scores can be calibrated"
            )
        raw_map = raw.at_size(*picture.size)
        region, box, blob = locate_peak(raw_map)
        score = float(calibration.calibrate(raw.score))
        return AnomalyEvidence(
            anomaly_map=calibration.calibrate(raw_map),
            raw_score=raw.score,
            score=score,
            verdict=calibration.verdict(score),
            region=region,
            box=box,
            region_mask=blob,
            dataset=dataset,
            category=category,
            backbone=self.backbone.name,
        )


def _default_label(source: ImageSource, index: int) -> str:
    return Path(source).name if isinstance(source, str | Path) else f"exemplar {index + 1}"


def _exemplar_row(key: str, dataset: str, category: str, label: str, image: Image.Image) -> dict:
    return {
        "exemplar_id": key,
        "dataset": dataset,
        "category": category,
        "label": label[:MAX_NAME_LENGTH],
        "width": image.size[0],
        "height": image.size[1],
        "added_at": now(),
        "png": png_bytes(image),
    }
