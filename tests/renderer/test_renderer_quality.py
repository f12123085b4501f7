"""The quality gate measures: each kind of bad sample fails with its own reason; clean ones pass."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from fake_renderer import clean_render

from synth_render import post, quality
from synth_render.rendering import RenderOutput


def _gate(out: RenderOutput, *, ids: tuple[int, ...] = (1, 2), rgb8: np.ndarray | None = None,
          seg: np.ndarray | None = None, **kw: Any) -> quality.QualityReport:
    rgb = post.linear_to_srgb8(out.rgb) if rgb8 is None else rgb8
    mask = post.encode_segmentation(out.index) if seg is None else seg
    return quality.assess(out, rgb, mask, scene_ids=list(ids), **kw)


def test_a_clean_render_passes_with_every_component_reported() -> None:
    report = _gate(clean_render())
    assert report.ok and report.score > 0.8, report
    doc = report.as_dict()
    for key in ("score", "noise", "exposure", "clipping", "contrast", "entropy", "coverage", "visibility",
                "masks", "noiseSigma", "mean", "clipped", "visibleObjects", "reasons"):
        assert key in doc
    assert doc["reasons"] == [] and doc["visibleObjects"] == 2


def _noise(out: RenderOutput) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, out.rgb.shape, dtype=np.uint8)


def _added_noise(out: RenderOutput) -> np.ndarray:
    rgb = post.linear_to_srgb8(out.rgb).astype(np.float32)
    return np.clip(rgb + np.random.default_rng(2).normal(0, 0.1 * 255, rgb.shape), 0, 255).astype(np.uint8)


def _clipped_white(out: RenderOutput) -> np.ndarray:
    rgb = post.linear_to_srgb8(out.rgb)
    rgb[:, : int(rgb.shape[1] * 0.6)] = 255
    return rgb


@pytest.mark.parametrize(("case", "make", "reason"), [
    ("pure RGB noise", _noise, "noise:"),
    ("render plus Gaussian noise 0.1", _added_noise, "noise:"),
    ("black frame", lambda o: np.zeros(o.rgb.shape, np.uint8), "exposure:"),
    ("white frame", lambda o: np.full(o.rgb.shape, 255, np.uint8), "exposure:"),
    ("60% burnt to white", _clipped_white, "clipping:"),
])
def test_bad_images_fail_with_their_reason(case: str, make: Any, reason: str) -> None:
    out = clean_render()
    report = _gate(out, rgb8=make(out))
    assert not report.ok, case
    assert any(r.startswith(reason) for r in report.reasons), report.reasons
    assert report.score < 0.5


def test_pure_noise_scores_zero_where_it_used_to_score_high() -> None:
    out = clean_render()
    report = _gate(out, rgb8=_noise(out))
    assert report.noise_sigma > 0.15 and report.noise == 0.0 and report.score == 0.0


def test_a_one_pixel_object_is_not_visible_and_alone_fails_the_sample() -> None:
    out = clean_render(ids=(1,))
    seg = np.zeros(out.index.shape, np.uint8)
    seg[32, 32] = 1
    report = _gate(out, ids=(1,), seg=seg)
    assert report.visible == {1: False} and report.visible_objects == 0
    assert any(r.startswith("visibility:") for r in report.reasons)


def test_a_tiny_object_next_to_a_visible_one_is_unlabelled_but_the_sample_passes() -> None:
    out = clean_render(ids=(1,))
    seg = post.encode_segmentation(out.index)
    seg[0, 0] = 2
    report = _gate(out, ids=(1, 2), seg=seg)
    assert report.visible == {1: True, 2: False} and report.visibility == 0.5
    assert report.ok


def test_a_low_visible_fraction_makes_an_object_invisible() -> None:
    out = replace(clean_render(ids=(1, 2)))
    report = _gate(_with_fractions(out, {1: 0.01, 2: 0.9}))
    assert report.visible == {1: False, 2: True}


def _with_fractions(out: RenderOutput, fractions: dict[int, float]) -> Any:
    class WithFractions:
        rgb, depth, index, normals = out.rgb, out.depth, out.index, out.normals
        visible_fractions = fractions
    return WithFractions()


def _noise_mask(out: RenderOutput) -> tuple[np.ndarray, RenderOutput]:
    return np.random.default_rng(3).integers(0, 3, out.index.shape).astype(np.uint8), out


def _foreign_id(out: RenderOutput) -> tuple[np.ndarray, RenderOutput]:
    seg = post.encode_segmentation(out.index)
    seg[seg == 2] = 7
    return seg, out


def _no_surface(out: RenderOutput) -> tuple[np.ndarray, RenderOutput]:
    return post.encode_segmentation(out.index), replace(out, depth=np.full(out.depth.shape, 1e10, np.float32))


@pytest.mark.parametrize("make", [_noise_mask, _foreign_id, _no_surface])
def test_bad_masks_fail_with_a_mask_reason(make: Any) -> None:
    seg, out = make(clean_render())
    report = _gate(out, seg=seg)
    assert any(r.startswith("mask:") for r in report.reasons), report.reasons
    assert report.masks == 0.0 and report.score == 0.0


def test_boxes_in_the_metadata_must_match_the_mask() -> None:
    out = clean_render()
    seg = post.encode_segmentation(out.index)
    boxes = post.bboxes_from_mask(seg)
    good = [{"id": i, "bbox": b} for i, b in boxes.items()]
    bad = [{"id": i, "bbox": [b[0] + 3, b[1], b[2], b[3]]} for i, b in boxes.items()]
    assert _gate(out, seg=seg, objects=good).ok
    report = _gate(out, seg=seg, objects=bad)
    assert any("bbox" in r for r in report.reasons)


@pytest.mark.parametrize("where", ["rgb", "depth", "normals"])
def test_nan_or_inf_in_a_pass_fails(where: str) -> None:
    out = clean_render()
    arr = getattr(out, where).copy()
    arr.reshape(-1)[arr.size // 2 + 7] = np.nan if where != "normals" else np.inf
    report = _gate(replace(out, **{where: arr}))
    assert report.nan and report.score == 0.0
    assert any(r == f"non-finite values (NaN/inf) in pass {where}" for r in report.reasons), report.reasons


def test_the_depth_background_value_is_not_a_non_finite_value() -> None:
    out = clean_render()
    depth = out.depth.copy()
    depth[0, :] = 1e10
    assert _gate(replace(out, depth=depth)).ok


def test_a_caption_check_can_fail_a_sample() -> None:
    out = clean_render()

    def check(caption: str, objects: Any) -> list[str]:
        return [] if "disc" in caption else ["the caption names no object of the scene"]

    assert _gate(out, caption="two discs", caption_check=check).ok
    report = _gate(out, caption="a cat", caption_check=check)
    assert report.reasons == ("caption: the caption names no object of the scene",)


def test_thresholds_come_from_the_spec_when_it_sets_them() -> None:
    class Q:
        min_object_pixels = 5000
        max_noise_sigma = None
    th = quality.thresholds_for(Q())
    assert th.min_object_pixels == 5000 and th.max_noise_sigma == quality.DEFAULT_THRESHOLDS.max_noise_sigma
    assert not _gate(clean_render(), thresholds=th).ok


def test_the_legacy_score_entry_point_still_scores() -> None:
    out = clean_render()
    rgb, seg = post.linear_to_srgb8(out.rgb), post.encode_segmentation(out.index)
    assert quality.score(rgb, seg, expected_objects=2).ok
    assert quality.score(rgb, seg, expected_objects=2, has_nan=True).score == 0.0
    assert quality.score(rgb, np.zeros_like(seg), expected_objects=2).score == 0.0


def test_a_caption_problem_fails_the_kept_attempt() -> None:
    meta: dict[str, Any] = {"quality": {"score": 0.9, "reasons": [], "passed": True},
                            "captionCheck": ["caption does not mention visible 'car'"]}
    assert quality.caption_verdict(meta) == ["caption does not mention visible 'car'"]
    assert meta["quality"]["passed"] is False
    assert meta["quality"]["reasons"] == ["caption: caption does not mention visible 'car'"]
    clean: dict[str, Any] = {"quality": {"score": 0.9, "reasons": [], "passed": True}, "captionCheck": []}
    assert quality.caption_verdict(clean) == [] and clean["quality"]["passed"] is True
