"""`VisualMemory`: curate normal exemplars per category and inspect images against them.

    memory = VisualMemory("/data/reason-iad/knowledge.lance")        # any LanceDB folder
    memory.add_exemplars("SynthIAD", "carpet", ["good1.png", "good2.png"])
    evidence = memory.inspect("query.png", "SynthIAD", "carpet")    # AnomalyEvidence

Adding or removing exemplars updates the category's bank (one new version of the patch table) and its
calibration. A bank that no longer matches its exemplars (e.g. after an interrupted write) is rebuilt when it is
next used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from reason_iad.config import MemoryConfig
from reason_iad.errors import UserError
from reason_iad.images import load_image
from reason_iad.memory import bank as banks
from reason_iad.memory.backbone import Backbone, load_backbone
from reason_iad.memory.calibration import Calibration, fit_calibration
from reason_iad.memory.evidence import AnomalyEvidence, locate_peak
from reason_iad.memory.exemplars import ExemplarRecord, ExemplarStore, now
from reason_iad.memory.scoring import RawAnomaly, patch_grid_distances, raw_anomaly
from reason_iad.memory.store import CalibrationRecord, MemoryStore
from reason_iad.memory.thresholds import RecentScores, ThresholdStore, ThresholdView, raw_at

ImageSource = str | Path | bytes | Image.Image


@dataclasses.dataclass(frozen=True)
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
        added: Exemplar ids of the last add's images, in order (duplicates included).
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
    added: tuple[str, ...] = dataclasses.field(default=(), compare=False)  # about the call, not the bank
    skipped: tuple[str, ...] = dataclasses.field(default=(), compare=False)


class VisualMemory:
    """Normal exemplars, patch banks and calibrations per (dataset, category) in one LanceDB folder."""

    def __init__(
        self,
        uri: str | Path,
        config: MemoryConfig | None = None,
        backbone: Backbone | None = None,
        exemplars: ExemplarStore | None = None,
    ) -> None:
        """Open the memory's tables in the LanceDB folder `uri` (`exemplars`: an open exemplar table of that folder)."""
        self.config = config or MemoryConfig()
        self.backbone = backbone or load_backbone(self.config.backbone, self.config.image_size, self.config.device)
        self.store = MemoryStore(uri, self.backbone.name, self.backbone.feature_dim)
        self.exemplar_store = exemplars if exemplars is not None else ExemplarStore(uri)
        self.thresholds = ThresholdStore(uri)
        self.recent = RecentScores()
        self._banks: dict[tuple[str, str], tuple[int, banks.PatchSet]] = {}
        self._device_banks: dict[tuple[str, str], tuple[int, torch.Tensor]] = {}  # search copies off the CPU
        self.device = self.config.device
        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"

    # ------------------------------------------------------------------ curation
    def add_exemplars(
        self,
        dataset: str,
        category: str,
        images: Sequence[ImageSource],
        labels: Sequence[str] | None = None,
        author: str = "",
        note: str = "",
    ) -> BankInfo:
        """Add normal exemplars to a category (the one exemplar table) and update its bank and calibration.

        Args:
            dataset: Dataset name.
            category: Category name.
            images: Paths, encoded bytes or PIL images; all are checked before anything is written.
            labels: Display names (default: file names or "exemplar N").
            author: Who added them (recorded with each exemplar).
            note: A free note recorded with each exemplar.

        Returns:
            The updated bank; `added` holds every image's exemplar id in order, `skipped` the labels of images
            the category already held.

        Raises:
            UserError: A bad name, an unreadable, truncated or too small image (nothing is written then).
        """
        items = self.exemplar_store.prepare(dataset, category, images, labels, author, note)
        with self.store.lock:
            ids, known = self.exemplar_store.add_many(items)
            fresh = {key: item.image for key, item in zip(ids, items, strict=True) if key not in known}
            if fresh:
                self._update_bank(dataset, category, fresh)
            info = self.bank_info(dataset, category)
        seen, skipped = set(known), []
        for label, key in zip((i.label for i in items), ids, strict=True):
            if key in seen:  # stored before, or an earlier image of this call
                skipped.append(label)
            seen.add(key)
        return dataclasses.replace(info, added=tuple(ids), skipped=tuple(skipped))

    def remove_exemplars(self, dataset: str, category: str, exemplar_ids: Sequence[str]) -> BankInfo:
        """Remove exemplars by id (from the one exemplar table) and rebuild the category's bank.

        Raises:
            UserError: An id the category does not hold (nothing is removed then).
        """
        with self.store.lock:
            if exemplar_ids:
                self.exemplar_store.remove(list(exemplar_ids), dataset, category)
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
        current = {r.id for r in self.exemplars(dataset, category)}
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
        return self.exemplar_store.records(category, dataset)

    def exemplar_image(self, dataset: str, category: str, exemplar: str) -> Image.Image:
        """One stored exemplar image."""
        found = self.exemplar_store.images(dataset, category, [exemplar])
        if exemplar not in found:
            raise UserError(f"{dataset}/{category} has no exemplar {exemplar!r}")
        return found[exemplar]

    def categories(self) -> list[tuple[str, str]]:
        """(dataset, category) pairs with exemplars."""
        return self.exemplar_store.categories()

    def versions(self) -> list[int]:
        """Versions of the patch table (every bank change adds one)."""
        return self.store.patch_versions()

    def bank_info(self, dataset: str, category: str) -> BankInfo:
        """The category's bank as stored (empty when it has no exemplars)."""
        record = self.store.read_calibration(dataset, category)
        if record is None:
            return BankInfo(dataset, category, self.backbone.name, (), 0, 0, 0, None)
        calibration = self._calibration(record, self.thresholds.current(dataset, category))
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

    def _calibration(self, record: CalibrationRecord, curated: float | None = None) -> Calibration | None:
        """The fitted calibration, with a curator's threshold when one is in force (and above the normal level)."""
        if len(record.scores) < 2:
            return None
        fitted = fit_calibration(record.scores, self.config.false_positive_rate)
        return fitted.with_threshold(curated) if curated is not None and curated > fitted.normal_level else fitted

    # ------------------------------------------------------------------ thresholds
    def threshold_view(self, dataset: str, category: str) -> ThresholdView:
        """The category's exemplar and recent scores, its fitted and current thresholds, and their history."""
        record, fitted = self._fitted(dataset, category)
        history = tuple(self.thresholds.history(dataset, category))
        curated = history[-1].threshold if history else None
        current = self._calibration(record, curated)
        return ThresholdView(fitted, current, record.scores, self.recent.of(dataset, category), history)

    def _fitted(self, dataset: str, category: str) -> tuple[CalibrationRecord, Calibration]:
        """The category's (ready) calibration record and the calibration fitted on it."""
        record = self._ready_record(dataset, category)
        fitted = self._calibration(record)
        if fitted is None:
            raise UserError(f"{dataset}/{category} needs at least two normal exemplars before it has a threshold")
        return record, fitted

    def set_threshold(self, dataset: str, category: str, calibrated: float | None, author: str, note: str = ""):
        """Move the category's suspicious threshold to a point of its fitted scale (None: back to the fitted one).

        Returns:
            The recorded `ThresholdChange` (its threshold a raw score).
        """
        raw = None if calibrated is None else raw_at(self._fitted(dataset, category)[1], calibrated)
        return self.thresholds.set(dataset, category, raw, author, note)

    def _exemplar_images(self, dataset: str, category: str) -> dict[str, Image.Image]:
        found = self.exemplar_store.images(dataset, category)
        return {key: found[key] for key in sorted(found)}

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
        """The category's calibration record, rebuilding a bank that does not match the stored exemplars.

        The check is repeated under the write lock, so a bank another thread has just built is not built again.
        """
        record = self._current_record(dataset, category)
        if record is None:
            with self.store.lock:
                record = self._current_record(dataset, category)
                if record is None:
                    self.rebuild(dataset, category)
                    record = self.store.read_calibration(dataset, category)
        return record

    def _current_record(self, dataset: str, category: str) -> CalibrationRecord | None:
        """The calibration record when it matches the stored exemplars, else None (refused without exemplars)."""
        record = self.store.read_calibration(dataset, category)
        current = tuple(r.id for r in self.exemplars(dataset, category))
        if not current:
            raise UserError(f"the visual memory has no normal exemplars for {dataset}/{category}; add some first")
        return record if record is not None and record.exemplar_ids == current else None

    def bank_ready(self, dataset: str, category: str) -> BankInfo:
        """The category's bank, built (or rebuilt) first when it does not match the stored exemplars."""
        self._ready_record(dataset, category)
        return self.bank_info(dataset, category)

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
        self.recent.add(dataset, category, raw.score)
        calibration = self._calibration(record, self.thresholds.current(dataset, category))
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
