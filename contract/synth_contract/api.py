"""The API of parallel-synth: SynthDataset and RenderBatch as pydantic models.

These models are the single source of truth. The CRDs in ``crds/`` are generated from them
(``synthctl crds``), ``synthctl validate-manifest`` validates against them, and the operator,
the local generator and the renderer read specs through them. Field names are camelCase on
the wire (Kubernetes convention) and snake_case in Python.

Cross-field rules live twice: as pydantic validators (for clear errors in ``synthctl``) and as
CEL ``x-kubernetes-validations`` on the CRD (so the API server rejects the same objects).
Tests evaluate the CEL rules against the same good and bad inputs.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from synth_contract import factors as factor_catalogue
from synth_contract.strictness import QUANTITY_PATTERN, check_quantity, make_scalars_strict

GROUP = "parallelsynth.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

LABEL_DATASET = f"{GROUP}/dataset"
LABEL_BATCH = f"{GROUP}/batch"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "parallel-synth"


class Category(StrEnum):
    """The taxonomy of the reference plan: one procedural generator per category."""

    GEOMETRY = "geometry"
    MATERIALS = "materials"
    LIGHTING = "lighting"
    CAMERA = "camera"
    COMPOSITION = "composition"
    MOTION = "motion"
    ENVIRONMENT = "environment"
    CHARACTERS = "characters"
    VEHICLES = "vehicles"
    FLUIDS = "fluids"
    EFFECTS = "effects"


ALL_CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)


class Engine(StrEnum):
    CYCLES = "cycles"
    EEVEE = "eevee"


class Device(StrEnum):
    AUTO = "auto"
    OPTIX = "optix"
    CUDA = "cuda"
    CPU = "cpu"


class PassName(StrEnum):
    RGB = "rgb"
    DEPTH = "depth"
    SEGMENTATION = "segmentation"
    NORMALS = "normals"
    ALBEDO = "albedo"
    ROUGHNESS = "roughness"
    METALLIC = "metallic"
    FLOW = "flow"
    SEMANTIC = "semantic"


class DepthFormat(StrEnum):
    PNG16 = "png16"
    EXR = "exr"


class Placement(StrEnum):
    """How a category's objects come to rest: settled by rigid-body physics, or dropped upright."""

    PHYSICS = "physics"
    DROP = "drop"


class ViewPattern(StrEnum):
    ORBIT = "orbit"
    ARC = "arc"
    STEREO = "stereo"
    RANDOM = "random"


class SaveScene(StrEnum):
    NONE = "none"
    GLB = "glb"
    BLEND = "blend"


class IndexFormat(StrEnum):
    PARQUET = "parquet"
    JSONL = "jsonl"


class DatasetPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DEGRADED = "Degraded"


class BatchPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class _Model(BaseModel):
    """Base for spec models: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
        validate_default=True,
    )
    _strict_scalars: ClassVar[bool] = True
    """int/float/bool fields refuse what the CRD refuses (``true`` for an int, ``"5"``, ``.inf``)."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls._strict_scalars:
            make_scalars_strict(cls)

    def wire(self) -> dict[str, Any]:
        """The object as it appears in YAML/JSON (camelCase, no unset optionals)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class _Status(_Model):
    """Base for status models: tolerant of fields written by newer operators."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", use_enum_values=True
    )
    _strict_scalars: ClassVar[bool] = False


def _cel(*rules: tuple[str, str] | tuple[str, str, str]) -> dict[str, Any]:
    """CEL validation rules for a CRD schema node, as ``(rule, message)`` or ``(rule, message, fieldPath)``.

    ``fieldPath`` (relative to the node, e.g. ``.categories``) is where the API server reports a
    violation: without it a rule on an object is reported on the object (``spec: Invalid value``),
    which does not name the field the way ``validate-manifest`` does (found on a real kube-apiserver).
    """
    return {"x-kubernetes-validations": [
        {"rule": r[0], "message": r[1], **({"fieldPath": r[2]} if len(r) > 2 else {})} for r in rules]}


# --------------------------------------------------------------------------- spec parts

_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/[^\s]*)?$")
_FILE_URI = re.compile(r"^file:///[^\s]*$")
URI_PATTERN = r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^\s]*)?|file:///[^\s]*)$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


ASSET_URI_PATTERN = (
    r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^\s]*)?|file:///[^\s]*|builtin:[a-z0-9][a-z0-9_\-]{0,62})$"
)
ASSET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$"


def _decoded(v: str) -> str:
    """``v`` with percent-escapes decoded until none is left (``%252e`` -> ``%2e`` -> ``.``), as a fetcher
    that unquotes would see it."""
    from urllib.parse import unquote

    for _ in range(8):
        once = unquote(v)
        if once == v:
            break
        v = once
    return v


def _asset_uri(v: str) -> str:
    """Check an asset URI: s3://bucket/prefix, file:///absolute/dir or builtin:NAME.

    The path is checked after percent-decoding: ``%2e%2e`` is ``..`` to the fetcher.
    """
    path = _decoded(v.split("://", 1)[-1])
    if any(part == ".." for part in path.replace("\\", "/").split("/")) or "\x00" in path:
        raise ValueError(f"{v!r}: '..' is not allowed in an asset URI (checked after decoding %-escapes)")
    if v.startswith("s3://"):
        if not _S3_URI.match(v):
            raise ValueError(f"{v!r} is not s3://bucket/prefix with a valid bucket name (3-63 chars, a-z 0-9 . -)")
    elif v.startswith("file://"):
        if not _FILE_URI.match(v):
            raise ValueError(f"{v!r}: a file URI must be file:///absolute/path")
        if any(part == ".." for part in v[len("file://"):].split("/")):
            raise ValueError(f"{v!r}: '..' is not allowed in an asset URI")
    elif not re.match(r"^builtin:[a-z0-9][a-z0-9_\-]{0,62}$", v):
        raise ValueError(f"{v!r}: allowed forms are s3://bucket/prefix, file:///absolute/path and builtin:NAME")
    return v


class AssetLibrary(_Model):
    """A library of meshes: {uri}/{class}/{assetId}.{glb|gltf|obj|ply|stl|blend}, optional catalog.yaml."""

    name: str = Field(
        min_length=1, max_length=63, pattern=ASSET_NAME_PATTERN,
        description="Library name that categories refer to (a-z, 0-9, '-', '_').",
    )
    uri: str = Field(
        max_length=1024,
        json_schema_extra={"pattern": ASSET_URI_PATTERN},
        description="Where the library lives: s3://bucket/prefix, file:///absolute/dir or builtin:NAME.",
    )

    _check_uri = field_validator("uri")(classmethod(lambda cls, v: _asset_uri(v)))


class AssetSource(_Model):
    """A folder or prefix of environments (.hdr/.exr) or PBR texture sets (one folder per material)."""

    uri: str = Field(
        max_length=1024,
        json_schema_extra={"pattern": ASSET_URI_PATTERN},
        description="s3://bucket/prefix, file:///absolute/dir or builtin:NAME (builtin:studiolights: the HDRIs in bpy).",
    )

    _check_uri = field_validator("uri")(classmethod(lambda cls, v: _asset_uri(v)))


class AssetsSpec(
    _Model,
    json_schema_extra=_cel(
        (
            "!has(self.libraries) || self.libraries.all(l, self.libraries.exists_one(m, m.name == l.name))",
            "assets.libraries must not repeat a name", ".libraries",
        ),
    ),
):
    """Content the scenes may use: mesh libraries, HDRI environments and PBR textures."""

    libraries: list[AssetLibrary] = Field(
        default_factory=list, max_length=32, description="Mesh libraries that categories may draw objects from."
    )
    environments: list[AssetSource] = Field(
        default_factory=lambda: [AssetSource(uri="builtin:studiolights")],
        max_length=32,
        description="HDRIs that light and back the scene; default: builtin:studiolights (shipped inside bpy).",
    )
    textures: list[AssetSource] = Field(
        default_factory=list, max_length=32, description="PBR texture sets, one folder per material."
    )

    @field_validator("libraries")
    @classmethod
    def _unique(cls, v: list[AssetLibrary]) -> list[AssetLibrary]:
        names = [lib.name for lib in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"library names must be unique; repeated: {', '.join(dupes)}")
        return v


class CategoryAssets(_Model):
    """Which libraries a category draws its subject objects from, and for what share of them."""

    libraries: list[str] = Field(
        min_length=1, max_length=32, description="Names of libraries in spec.assets.libraries."
    )
    share: float = Field(
        1.0, ge=0, le=1, description="Fraction of the category's subject objects taken from the libraries."
    )


class CategoryWeight(_Model):
    """One category of the taxonomy and its share of the dataset."""

    name: Category = Field(description="Category name: one of " + ", ".join(ALL_CATEGORIES) + ".")
    weight: float = Field(
        1.0, ge=0, le=1e9, description="Relative weight; shares are weight / sum(weights)."
    )
    assets: CategoryAssets | None = Field(
        None, description="Take this share of subject objects from asset libraries (default: procedural only)."
    )
    render: CategoryRender | None = Field(
        None, description="This category's own render.views / render.frames (default: spec.render's), "
        "so one dataset can mix stills, multi-view samples and sequences.",
    )
    placement: Placement | None = Field(
        None, description="physics: objects are dropped from seeded poses and settled by a rigid-body engine "
        "(they tumble, lean, stack); drop: upright on their base, no simulation. Default: drop for vehicles, "
        "characters, environment, fluids, effects and motion, physics for the others.",
    )


class ScheduleCategory(_Model):
    """A category's weight within one schedule segment."""

    name: Category = Field(
        description="Category name: one of " + ", ".join(ALL_CATEGORIES) + ".",
        json_schema_extra={"maxLength": 32},  # bounds the CEL cost estimate of the schedule transition rules
    )
    weight: float = Field(1.0, ge=0, le=1e9, description="Relative weight within the segment.")


FactorWeight = Annotated[float, Field(ge=0, le=1e9, strict=True, allow_inf_nan=False)]
"""A factor value's relative weight within a schedule segment."""


def _factor_rules() -> tuple[tuple[str, str], ...]:
    """CEL: factors name categories of the segment, and factors and values of synth_contract.factors.

    The real kube-apiserver (1.36) accepts these rules only because ``factors`` bounds its maps by
    the catalogue's sizes (``MAX_FACTORS``, ``MAX_VALUES``): with 8 x 8 the value rule's estimated
    cost exceeded the budget 1.8x (map keys have no maxLength, so every key is costed as long).
    """
    cats = factor_catalogue.FACTORS
    names = ", ".join(f"'{c}': [{', '.join(repr(f.name) for f in fs)}]" for c, fs in cats.items())
    values = ", ".join(f"'{c}.{f.name}': [{', '.join(repr(v) for v in f.values)}]" for c, fs in cats.items() for f in fs)
    sizes = ", ".join(f"'{c}.{f.name}': {len(f.values)}" for c, fs in cats.items() for f in fs)
    # Each rule checks only what the one before it let through (a missing map key is an error in CEL).
    each = "!has(self.factors) || self.factors.all(c, self.factors[c].all(f, !((c + '.' + f) in {{{}}}) || {}))"
    return (
        ("!has(self.factors) || self.factors.all(c, self.categories.exists(d, d.name == c))",
         "schedule[].factors: every category must be one of the segment's categories"),
        ("!has(self.factors) || self.factors.all(c, !(c in {" + names + "}) || self.factors[c].all(f, f in {"
         + names + "}[c]))",
         "schedule[].factors: unknown factor for the category (see synth_contract.factors.FACTORS)"),
        (each.format(sizes, "self.factors[c][f].all(v, v in {" + values + "}[c + '.' + f])"),
         "schedule[].factors: unknown factor value (see synth_contract.factors.FACTORS)"),
        (each.format(sizes, "self.factors[c][f].exists(v, self.factors[c][f][v] > 0) || "
                     "size(self.factors[c][f]) < {" + sizes + "}[c + '.' + f]"),
         "schedule[].factors: a factor's weights must not all be zero (values left out weigh 1)"),
    )


class ScheduleSegment(
    _Model,
    json_schema_extra=_cel(
        ("self.categories.all(c, self.categories.exists_one(d, d.name == c.name))",
         "schedule[].categories must not repeat a name", ".categories"),
        ("self.categories.exists(c, has(c.weight) && c.weight > 0)",
         "schedule[].categories: at least one weight must be > 0", ".categories"),
        *_factor_rules(),
    ),
):
    """Category weights from a shard on: shards before ``fromShard`` keep the weights they had."""

    from_shard: int = Field(ge=1, le=10**9, description="First shard this segment re-weights (>= 1).")
    categories: list[ScheduleCategory] = Field(
        min_length=1, max_length=11, description="Categories and weights from fromShard on."
    )
    factors: dict[str, Annotated[dict[str, Annotated[dict[str, FactorWeight],
                                                     Field(max_length=factor_catalogue.MAX_VALUES)]],
                                 Field(max_length=factor_catalogue.MAX_FACTORS)]] | None = Field(
        None, max_length=11,
        description="Weights on strata factor values within a category from fromShard on: "
        "{category: {factor: {value: weight}}} (values left out weigh 1; factors left out keep their "
        "natural shares). Factors and values: synth_contract.factors.FACTORS.",
    )

    @field_validator("categories")
    @classmethod
    def _weights(cls, v: list[ScheduleCategory]) -> list[ScheduleCategory]:
        names = [c.name for c in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"category names must be unique; repeated: {', '.join(map(str, dupes))}")
        if sum(c.weight for c in v) <= 0:
            raise ValueError("the weights sum to zero: at least one category needs weight > 0")
        return v

    @model_validator(mode="after")
    def _factors(self) -> ScheduleSegment:
        if self.factors:
            problems = factor_catalogue.weight_problems(self.factors, categories=tuple(str(c.name)
                                                                                      for c in self.categories))
            if problems:
                raise ValueError("; ".join(problems))
        return self


class RerenderSpec(_Model):
    """Which samples of the old version a derived version renders again."""

    below_score: float = Field(
        ge=0, le=1, description="Re-render the samples whose quality score in the old version is below this "
        "(and the ones quarantined there); copy the others.",
    )


class DerivedFromSpec(_Model):
    """A version that improves an earlier one: re-renders its low scorers, copies the rest."""

    version: str = Field(pattern=VERSION_PATTERN, description="The earlier version of the same dataset.")
    rerender: RerenderSpec = Field(description="Which samples to render again.")


class ResolutionTier(_Model):
    """An output resolution and the fraction of samples rendered at it."""

    width: int = Field(512, ge=16, le=8192, description="Image width in pixels.")
    height: int = Field(512, ge=16, le=8192, description="Image height in pixels.")
    fraction: float = Field(
        1.0, gt=0, le=1, description="Fraction of samples at this tier (normalised over all tiers)."
    )


class SampleRange(_Model, json_schema_extra=_cel(("self.min <= self.max", "samples.min must be <= samples.max"))):
    """Path-tracing samples per pixel, chosen per image from scene complexity."""

    min: int = Field(16, ge=1, le=65536, description="Samples per pixel for the simplest scenes.")
    max: int = Field(64, ge=1, le=65536, description="Samples per pixel for the most complex scenes.")

    @model_validator(mode="after")
    def _ordered(self) -> SampleRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class ElevationRange(
    _Model, json_schema_extra=_cel(("self.min <= self.max", "elevation.min must be <= elevation.max"))
):
    """Camera elevation above the look-at point's horizontal plane, degrees."""

    min: float = Field(5.0, ge=-89, le=89, description="Lowest elevation, degrees.")
    max: float = Field(60.0, ge=-89, le=89, description="Highest elevation, degrees.")

    @model_validator(mode="after")
    def _ordered(self) -> ElevationRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class ViewsSpec(_Model):
    """One scene seen from several cameras (multi-view): ``{key}.view{k:02d}.*`` per view."""

    count: int = Field(1, ge=1, le=64, description="Cameras per sample; view 0 is the scene's own camera.")
    pattern: ViewPattern = Field(
        ViewPattern.ORBIT,
        description="orbit (evenly around the look-at point), arc (over spanDegrees around view 0), "
        "stereo (parallel rig shifted by baseline), random (seeded, within elevation).",
    )
    radius: float | None = Field(
        None, gt=0, le=1000, description="Distance to the look-at point, metres; default: view 0's distance."
    )
    elevation: ElevationRange | None = Field(
        None, description="Elevation range, degrees: random draws in it, orbit/arc clamp into it."
    )
    span_degrees: float = Field(90.0, gt=0, le=360, description="arc: the azimuth range the views cover.")
    baseline: float = Field(0.1, gt=0, le=100, description="stereo: metres between neighbouring cameras.")


class FramesSpec(_Model):
    """Short sequences: ``{key}.frame{t:03d}.*`` per frame, objects moving by their velocity."""

    count: int = Field(1, ge=1, le=240, description="Frames per sample; frame 0 is the still the sample has anyway.")
    fps: float = Field(24.0, gt=0, le=240, description="Frames per second (recorded; velocities are per frame).")
    camera_degrees_per_frame: float = Field(
        0.0, ge=-30, le=30, description="Camera motion: orbit about the look-at point, degrees per frame (0: static)."
    )
    motion_blur: bool = Field(
        False, description="Blur each frame over the shutter (the flow then comes from an extra 1-sample render)."
    )


class CategoryRender(
    _Model,
    json_schema_extra=_cel(
        ("!(has(self.views) && has(self.views.count) && self.views.count > 1 && has(self.frames) && "
         "has(self.frames.count) && self.frames.count > 1)",
         "categories[].render.views.count and categories[].render.frames.count cannot both be > 1"),
    ),
):
    """A category's overrides of ``spec.render.views`` / ``spec.render.frames`` (each replaces the whole field)."""

    views: ViewsSpec | None = Field(None, description="Multi-view for this category (default: spec.render.views).")
    frames: FramesSpec | None = Field(None, description="Sequences for this category (default: spec.render.frames).")


class DistortionRange(_Model):
    """Largest absolute Brown-Conrady coefficients drawn per sample (OpenCV model, normalised coordinates)."""

    k1: float = Field(0.08, ge=0, le=1, description="Radial k1: drawn in [-k1, k1] (barrel < 0 < pincushion).")
    k2: float = Field(0.02, ge=0, le=1, description="Radial k2: drawn in [-k2, k2].")
    p1: float = Field(0.002, ge=0, le=0.1, description="Tangential p1: drawn in [-p1, p1].")
    p2: float = Field(0.002, ge=0, le=0.1, description="Tangential p2: drawn in [-p2, p2].")


class NoiseRange(_Model):
    """Sensor noise on linear values: variance = shot * value + read**2, each drawn up to its maximum."""

    shot: float = Field(0.002, ge=0, le=0.1, description="Largest shot-noise gain (variance per unit of linear value).")
    read: float = Field(0.004, ge=0, le=0.1, description="Largest read-noise standard deviation (linear units).")


class JpegRange(_Model, json_schema_extra=_cel(("self.min <= self.max", "jpegQuality.min must be <= jpegQuality.max"))):
    """JPEG re-compression quality, drawn per sample (0 in both: no re-compression)."""

    min: int = Field(75, ge=0, le=100, description="Lowest JPEG quality.")
    max: int = Field(95, ge=0, le=100, description="Highest JPEG quality.")

    @model_validator(mode="after")
    def _ordered(self) -> JpegRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class SensorSpec(_Model):
    """A camera sensor model applied to every still: seeded per sample, every parameter in the sample JSON.

    Off by default. Labels (masks, boxes, depth, normals) are warped with the lens distortion, so
    they stay aligned with the image; the camera metadata records the distortion coefficients.
    """

    enabled: bool = Field(False, description="Apply the sensor model (off: ideal pinhole, noise-free renders).")
    exposure: float = Field(0.5, ge=0, le=4, description="Largest exposure error, stops (drawn in [-x, x]).")
    white_balance: float = Field(
        0.08, ge=0, le=0.5, description="Largest white-balance error: red and blue gains drawn in [1-x, 1+x]."
    )
    distortion: DistortionRange = Field(default_factory=DistortionRange, description="Lens distortion range.")
    vignetting: float = Field(
        0.35, ge=0, le=1, description="Largest corner fall-off: brightness at the corners is down by up to this share."
    )
    noise: NoiseRange = Field(default_factory=NoiseRange, description="Shot and read noise range.")
    chromatic_aberration: float = Field(
        0.0015, ge=0, le=0.02, description="Largest lateral chromatic aberration: red/blue magnified by 1 +- x."
    )
    jpeg_quality: JpegRange = Field(default_factory=JpegRange, description="JPEG re-compression quality range.")


class RenderSpec(
    _Model,
    json_schema_extra=_cel(
        ("!has(self.passes) || self.passes.exists(p, p == 'rgb')", "render.passes must include rgb", ".passes"),
        ("!(has(self.views) && has(self.views.count) && self.views.count > 1 && has(self.frames) && "
         "has(self.frames.count) && self.frames.count > 1)",
         "render.views.count and render.frames.count cannot both be > 1"),
    ),
):
    """How each sample is rendered."""

    engine: Engine = Field(Engine.CYCLES, description="Render engine: cycles (path tracing) or eevee.")
    device: Device = Field(
        Device.AUTO,
        description="Compute device: auto picks OptiX, then CUDA, then CPU; or force optix, cuda or cpu.",
    )
    resolutions: list[ResolutionTier] = Field(
        default_factory=lambda: [ResolutionTier()],
        min_length=1,
        max_length=8,
        description="Resolution tiers; each sample picks one deterministically by fraction.",
    )
    samples: SampleRange = Field(default_factory=SampleRange, description="Adaptive samples-per-pixel range.")
    denoise: bool = Field(True, description="Run the denoiser (OptiX on GPU, OpenImageDenoise on CPU).")
    passes: list[PassName] = Field(
        default_factory=lambda: [PassName.RGB, PassName.DEPTH, PassName.SEGMENTATION],
        min_length=1,
        max_length=10,
        description="Outputs per sample: rgb (always), depth, segmentation, normals (camera space), albedo, "
        "roughness, metallic, flow (motion vectors, float EXR), semantic (class ids).",
    )
    depth_format: DepthFormat = Field(
        DepthFormat.PNG16,
        description="Depth pass encoding: png16 ({key}.depth.png, 16-bit with a scale) or exr "
        "({key}.depth.exr, float32 metres).",
    )
    views: ViewsSpec = Field(
        default_factory=ViewsSpec, description="Multi-view: cameras per sample and how they are placed."
    )
    frames: FramesSpec = Field(
        default_factory=FramesSpec, description="Sequences: frames per sample, frame rate and camera motion."
    )
    sensor: SensorSpec = Field(
        default_factory=SensorSpec, description="Camera sensor model: exposure, white balance, lens distortion, "
        "vignetting, noise, chromatic aberration and JPEG re-compression (off by default).",
    )
    captioner: str = Field(
        "builtin",
        max_length=200,
        pattern=r"^(builtin|none|[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?)$",
        description="Caption writer: builtin, none, an entry point name in group parallel_synth.captioners, "
        "or module:function.",
    )

    @model_validator(mode="after")
    def _views_or_frames(self) -> RenderSpec:
        if self.views.count > 1 and self.frames.count > 1:
            raise ValueError("render.views.count and render.frames.count cannot both be > 1 (one or the other)")
        return self

    @field_validator("passes")
    @classmethod
    def _passes(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("passes must not repeat")
        if PassName.RGB not in v:
            raise ValueError("passes must include 'rgb'")
        return v


class QualitySpec(_Model):
    """The per-sample quality gate."""

    min_score: float = Field(
        0.5, ge=0, le=1, description="Samples scoring below this (0..1) are re-rendered with a derived seed."
    )
    min_pass_rate: float = Field(
        0.9, ge=0, le=1, description="A shard whose fraction of passing samples is below this fails."
    )
    max_rerenders: int = Field(2, ge=0, le=10, description="Re-render attempts for a failing sample.")
    max_noise_sigma: float | None = Field(
        None, gt=0, le=1, description="Fail samples whose estimated noise std (luminance 0..1) is above this "
        "(default 0.06, see docs/quality.md).",
    )
    max_clipped: float | None = Field(
        None, gt=0, le=1, description="Fail samples with more than this share of pixels clipped to black or white "
        "(default 0.4).",
    )
    min_object_pixels: int | None = Field(
        None, ge=1, le=10**8, description="An object with fewer visible pixels is not visible (default 16); "
        "a sample needs one visible object.",
    )
    min_visible_fraction: float | None = Field(
        None, ge=0, le=1, description="An object with a lower visible share (occlusion, frame crop) is not "
        "visible (default 0.05).",
    )


class OutputSpec(_Model):
    """Where the dataset is written."""

    uri: str = Field(
        description="Destination: s3://bucket/prefix or file:///absolute/path.",
        max_length=1024,
        json_schema_extra={"pattern": URI_PATTERN},
    )
    endpoint_url: str | None = Field(
        None, max_length=1024, pattern=r"^https?://", description="S3 endpoint for MinIO, R2, GCS interop..."
    )
    region: str | None = Field(None, max_length=64, description="S3 region, if the store needs one.")
    credentials_secret: str | None = Field(
        None,
        max_length=253,
        pattern=DNS_LABEL,
        description="Secret in the dataset's namespace with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
    )
    index_formats: list[IndexFormat] = Field(
        default_factory=lambda: [IndexFormat.PARQUET, IndexFormat.JSONL],
        max_length=2,
        description="Index files written when the dataset completes: parquet, jsonl.",
    )
    save_scene: SaveScene = Field(
        SaveScene.NONE,
        description="Also store each sample's scene: none, glb ({key}.glb) or blend ({key}.blend).",
    )

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        if v.startswith("s3://"):
            if not _S3_URI.match(v):
                raise ValueError(
                    f"{v!r} is not s3://bucket/prefix with a valid bucket name (3-63 chars, a-z 0-9 . -)"
                )
        elif not _FILE_URI.match(v):
            raise ValueError(f"{v!r}: allowed forms are s3://bucket/prefix and file:///absolute/path")
        return v


class ThroughputSpec(_Model):
    """The production rate the autoscaler aims for."""

    target_per_day: int | None = Field(
        None, ge=1, le=10**12, description="Target samples per day; the autoscaler sizes the fleet for it."
    )
    deadline: datetime | None = Field(
        None, description="Finish by this time (RFC 3339); raises the worker count when needed."
    )


class WorkersSpec(_Model, json_schema_extra=_cel(("self.min <= self.max", "workers.min must be <= workers.max"))):
    """Bounds for the number of rendering pods."""

    min: int = Field(0, ge=0, le=100000, description="Fewest rendering pods while work remains.")
    max: int = Field(4, ge=1, le=100000, description="Most rendering pods; also bounds live RenderBatches.")

    @model_validator(mode="after")
    def _ordered(self) -> WorkersSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class Toleration(_Model):
    """A Kubernetes toleration (core/v1 Toleration)."""

    key: str | None = Field(None, max_length=316, description="Taint key.")
    operator: Literal["Exists", "Equal"] | None = Field(None, description="Exists or Equal.")
    value: str | None = Field(None, max_length=63, description="Taint value for operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect to tolerate."
    )
    toleration_seconds: int | None = Field(None, description="For NoExecute: how long to stay bound.")


class NodePoolSpec(_Model):
    """Where rendering pods run."""

    gpu_resource: str = Field(
        "nvidia.com/gpu", max_length=253, description="Extended resource name of the GPU."
    )
    gpus_per_worker: int = Field(1, ge=0, le=16, description="GPUs per rendering pod (0: CPU-only).")
    cpu: str = Field("4", max_length=16, json_schema_extra={"pattern": QUANTITY_PATTERN},
                     description="CPU request per rendering pod (a Kubernetes quantity: \"4\", \"500m\").")
    memory: str = Field("16Gi", max_length=16, json_schema_extra={"pattern": QUANTITY_PATTERN},
                        description="Memory request and limit per rendering pod (a Kubernetes quantity: \"16Gi\").")
    gpu_type: str | None = Field(None, max_length=63, description="GPU model, informational (e.g. L4, A10G).")
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the rendering pods require."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Extra tolerations for the rendering pods."
    )
    spot: bool = Field(True, description="Prefer spot/preemptible nodes.")
    on_demand_fallback: bool = Field(
        True, description="Shift new pods to on-demand nodes when spot keeps being preempted."
    )

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, v: str, info: Any) -> str:
        return check_quantity(v, what=str(info.field_name))


class PricingSpec(_Model):
    """Prices used for cost, projections and budget."""

    spot_per_gpu_hour: float = Field(0.35, ge=0, le=1000, description="$ per GPU-hour on spot capacity.")
    on_demand_per_gpu_hour: float = Field(
        1.0, ge=0, le=1000, description="$ per GPU-hour on on-demand capacity."
    )


class BudgetSpec(_Model):
    """Spending limit."""

    max_dollars: float | None = Field(
        None, ge=0, description="Stop new work when spend or projected spend reaches this."
    )


class EstimatesSpec(_Model):
    """Inputs the planner cannot measure before the run (capacity plan, autoscaler prior)."""

    gpu_seconds_per_sample: float = Field(
        60.0, gt=0, le=86400,
        description="Render time of one sample on one GPU, in seconds (one camera: plan scales it by render.views).",
    )
    bytes_per_sample: int = Field(
        5_000_000, gt=0,
        description="Stored bytes per sample with all passes, before measurement (one camera: scaled by render.views).",
    )


class RetrySpec(_Model):
    """Retry limits handed to each RenderBatch."""

    per_shard: int = Field(3, ge=0, le=100, description="Pod retries per shard (Job backoffLimitPerIndex).")
    attempts: int = Field(3, ge=1, le=100, description="Job attempts per RenderBatch before it is Failed.")


# --------------------------------------------------------------------------- shared GPU clusters (issue #17)

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_QUALIFIED_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
RESERVED_LABEL_PREFIXES = (f"{GROUP}/", "app.kubernetes.io/managed-by", "batch.kubernetes.io/", "kueue.x-k8s.io/",
                           "job-name", "controller-uid")
"""Pod label keys the operator or the Job controller own (selectors, Kueue's queue): refused in podTemplate."""
RESERVED_ANNOTATION_PREFIXES = (f"{GROUP}/", "batch.kubernetes.io/")
RESERVED_ENV_PREFIXES = ("SYNTH_", "AWS_")
RESERVED_ENV_NAMES = ("HOME", "TMPDIR", "JOB_COMPLETION_INDEX")
"""Environment variables the operator sets for the renderer (spec, credentials, paths): refused in podTemplate.env."""


def _reserved_cel(field: str, prefixes: tuple[str, ...]) -> dict[str, Any]:
    cond = " && ".join(f"!k.startsWith('{p}')" for p in prefixes)
    return _cel((f"self.all(k, {cond})", f"podTemplate.{field}: keys starting with {', '.join(prefixes)} "
                                         "are set by the operator"))


class LocalObjectReference(_Model):
    """A reference to an object in the dataset's namespace, by name (core/v1 LocalObjectReference)."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN, description="Object name.")


class KeySelector(_Model):
    """A key of a ConfigMap or Secret in the dataset's namespace."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN, description="ConfigMap or Secret name.")
    key: str = Field(max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key within it.")
    optional: bool | None = Field(None, description="Start the pod even when the key is missing.")


class ObjectFieldSelector(_Model):
    """A field of the pod (core/v1 ObjectFieldSelector), e.g. metadata.name or spec.nodeName."""

    field_path: str = Field(max_length=256, description="Path of the field, e.g. spec.nodeName.")
    api_version: str | None = Field(None, max_length=64, description="Schema version of fieldPath (v1).")


class ResourceFieldSelector(_Model):
    """A resource limit or request of the render container (core/v1 ResourceFieldSelector)."""

    resource: str = Field(max_length=253, description="e.g. limits.memory, requests.cpu.")
    container_name: str | None = Field(None, max_length=63, description="Container (default: the render container).")
    divisor: str | None = Field(None, max_length=32, description="Output format, e.g. 1Mi.")


class EnvVarSource(
    _Model,
    json_schema_extra=_cel((
        "[has(self.fieldRef), has(self.resourceFieldRef), has(self.configMapKeyRef), has(self.secretKeyRef)]"
        ".filter(x, x).size() == 1",
        "valueFrom: set exactly one of fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef",
    )),
):
    """Where an environment variable's value comes from (core/v1 EnvVarSource)."""

    field_ref: ObjectFieldSelector | None = Field(None, description="A field of the pod.")
    resource_field_ref: ResourceFieldSelector | None = Field(None, description="A resource of the container.")
    config_map_key_ref: KeySelector | None = Field(None, description="A key of a ConfigMap.")
    secret_key_ref: KeySelector | None = Field(None, description="A key of a Secret.")

    @model_validator(mode="after")
    def _one(self) -> EnvVarSource:
        set_ = [f for f in ("field_ref", "resource_field_ref", "config_map_key_ref", "secret_key_ref")
                if getattr(self, f) is not None]
        if len(set_) != 1:
            raise ValueError("set exactly one of fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef")
        return self


class EnvVar(
    _Model,
    json_schema_extra=_cel(
        ("!has(self.value)", "podTemplate.env: plain values are refused; use valueFrom (secretKeyRef, "
                             "configMapKeyRef, fieldRef, resourceFieldRef)"),
        ("has(self.valueFrom)", "podTemplate.env: valueFrom is required"),
        ("!(self.name in ['HOME', 'TMPDIR', 'JOB_COMPLETION_INDEX']) && !self.name.startsWith('SYNTH_') "
         "&& !self.name.startsWith('AWS_')", "podTemplate.env: this name is set by the operator"),
    ),
):
    """An extra environment variable of the render container; values only through valueFrom."""

    name: str = Field(max_length=253, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", description="Variable name.")
    value: str | None = Field(
        None, description="Refused: no plain values (they end up in the Job for all to read); use valueFrom."
    )
    value_from: EnvVarSource | None = Field(None, description="Where the value comes from.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v in RESERVED_ENV_NAMES or v.startswith(RESERVED_ENV_PREFIXES):
            raise ValueError(f"{v!r} is set by the operator; names {', '.join(RESERVED_ENV_NAMES)} and prefixes "
                             f"{', '.join(RESERVED_ENV_PREFIXES)} are reserved")
        return v

    @field_validator("value")
    @classmethod
    def _value(cls, v: str | None) -> str | None:
        if v is not None:
            raise ValueError("plain values are refused (they would be readable in the Job); use valueFrom: "
                             "secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef")
        return v

    @model_validator(mode="after")
    def _source(self) -> EnvVar:
        if self.value is None and self.value_from is None:
            raise ValueError(f"env {self.name!r}: valueFrom is required")
        return self


def _operator_values(operator: str, values: list[str]) -> None:
    """The API server's rule for a requirement's ``values`` (it refuses the Job otherwise)."""
    if operator in ("In", "NotIn") and not values:
        raise ValueError(f"operator {operator} needs at least one value (values is empty)")
    if operator in ("Exists", "DoesNotExist") and values:
        raise ValueError(f"operator {operator} takes no values (got {len(values)})")
    if operator in ("Gt", "Lt") and (len(values) != 1 or not re.fullmatch(r"-?[0-9]{1,18}", values[0])):
        raise ValueError(f"operator {operator} needs exactly one integer value (got {values[:3]!r})")


class NodeSelectorRequirement(_Model):
    """A node label (or field) requirement (core/v1 NodeSelectorRequirement)."""

    key: str = Field(max_length=316, description="Node label key (or field for matchFields).")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] = Field(description="Operator.")
    values: list[str] = Field(default_factory=list, max_length=64, description="Values for In/NotIn/Gt/Lt.")

    @model_validator(mode="after")
    def _values(self) -> NodeSelectorRequirement:
        _operator_values(self.operator, self.values)
        return self


class NodeSelectorTerm(_Model):
    """Requirements that must all hold (core/v1 NodeSelectorTerm)."""

    match_expressions: list[NodeSelectorRequirement] = Field(
        default_factory=list, max_length=32, description="By node labels.")
    match_fields: list[NodeSelectorRequirement] = Field(
        default_factory=list, max_length=32, description="By node fields (metadata.name).")


class NodeSelector(_Model):
    """Terms of which at least one must hold (core/v1 NodeSelector)."""

    node_selector_terms: list[NodeSelectorTerm] = Field(min_length=1, max_length=16, description="ORed terms.")


class PreferredSchedulingTerm(_Model):
    """A weighted preference (core/v1 PreferredSchedulingTerm)."""

    weight: int = Field(ge=1, le=100, description="Weight 1-100.")
    preference: NodeSelectorTerm = Field(description="The preferred node requirements.")


class NodeAffinity(_Model):
    """Node affinity (core/v1 NodeAffinity); merged with the operator's spot/on-demand affinity."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = Field(
        None, description="Nodes the pods must run on (combined with the operator's own requirement by AND).")
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] = Field(
        default_factory=list, max_length=16, description="Nodes the pods prefer (added to the operator's).")


class Affinity(_Model):
    """Pod affinity: node affinity only (render pods are independent; spread them with topologySpreadConstraints)."""

    node_affinity: NodeAffinity | None = Field(None, description="Node affinity.")

    @model_validator(mode="before")
    @classmethod
    def _node_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("podAffinity", "podAntiAffinity"):
                if key in data:
                    raise ValueError(f"{key} is not supported: only nodeAffinity (spread pods with "
                                     "podTemplate.topologySpreadConstraints)")
        return data


class LabelSelectorRequirement(_Model):
    """A label requirement (meta/v1 LabelSelectorRequirement)."""

    key: str = Field(max_length=316, description="Label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(description="Operator.")
    values: list[str] = Field(default_factory=list, max_length=64, description="Values for In/NotIn.")

    @model_validator(mode="after")
    def _values(self) -> LabelSelectorRequirement:
        _operator_values(self.operator, self.values)
        return self


class LabelSelector(_Model):
    """Selects pods by labels (meta/v1 LabelSelector)."""

    match_labels: dict[str, str] = Field(default_factory=dict, description="Exact label matches.")
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=16, description="Expressions.")


class TopologySpreadConstraint(_Model):
    """How render pods spread over zones or nodes (core/v1 TopologySpreadConstraint)."""

    max_skew: int = Field(ge=1, le=1000, description="Largest allowed difference of pod counts between domains.")
    topology_key: str = Field(max_length=316, description="Node label of the domain, e.g. topology.kubernetes.io/zone.")
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = Field(description="Hard or soft.")
    label_selector: LabelSelector | None = Field(
        None, description="Pods counted (e.g. matchLabels: {parallelsynth.io/dataset: NAME}).")
    min_domains: int | None = Field(None, ge=1, le=1000, description="Minimum eligible domains.")
    node_affinity_policy: Literal["Honor", "Ignore"] | None = Field(None, description="Honor or Ignore.")
    node_taints_policy: Literal["Honor", "Ignore"] | None = Field(None, description="Honor or Ignore.")
    match_label_keys: list[str] = Field(default_factory=list, max_length=16, description="Pod label keys to group by.")


MAX_ANNOTATION_BYTES = 256 * 1024
"""Kubernetes' limit on an object's annotations, keys and values together (apimachinery's TotalAnnotationSizeLimitB)."""


class PodTemplateSpec(_Model):
    """Site-specific settings merged into the render pods; the operator's own fields stay authoritative.

    Labels and annotations are added (keys the operator or Kueue own are refused), priority and
    runtime class and pull secrets are set, env is appended after the operator's (valueFrom only),
    node affinity is ANDed with the operator's spot/on-demand requirement and its preferences
    added. Security context, restart and failure policy, resources and the operator's env are
    never overridden.
    """

    labels: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Extra pod labels (e.g. cost centre).",
        json_schema_extra=_reserved_cel("labels", RESERVED_LABEL_PREFIXES))
    annotations: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Extra pod annotations.",
        json_schema_extra=_reserved_cel("annotations", RESERVED_ANNOTATION_PREFIXES))
    priority_class_name: str | None = Field(
        None, max_length=253, pattern=DNS_SUBDOMAIN, description="PriorityClass of the render pods.")
    runtime_class_name: str | None = Field(
        None, max_length=253, pattern=DNS_SUBDOMAIN, description="RuntimeClass (e.g. nvidia).")
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list, max_length=16, description="Secrets for pulling the renderer image.")
    env: list[EnvVar] = Field(default_factory=list, max_length=64, description="Extra env, valueFrom only.")
    affinity: Affinity | None = Field(None, description="Node affinity (merged with the operator's).")
    topology_spread_constraints: list[TopologySpreadConstraint] = Field(
        default_factory=list, max_length=8, description="Spread of the render pods.")

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for k, val in v.items():
            if k.startswith(RESERVED_LABEL_PREFIXES):
                raise ValueError(f"label {k!r} is set by the operator (it selects pods on it, or Kueue reads it: "
                                 "use spec.queue); reserved: " + ", ".join(RESERVED_LABEL_PREFIXES))
            if not _QUALIFIED_NAME.match(k) or len(k) > 316:
                raise ValueError(f"label key {k!r} is not a qualified name ([prefix/]name, name <= 63 chars)")
            if not _LABEL_VALUE.match(val):
                raise ValueError(f"label {k!r}: value {val!r} is not a label value (<= 63 chars of A-Z a-z 0-9 - _ .)")
        return v

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, v: dict[str, str]) -> dict[str, str]:
        total = sum(len(k.encode()) + len(val.encode()) for k, val in v.items())
        if total > MAX_ANNOTATION_BYTES:
            raise ValueError(f"annotations total {total:,} bytes, more than Kubernetes' "
                             f"{MAX_ANNOTATION_BYTES:,} (256 KiB, keys and values together)")
        for k in v:
            if k.startswith(RESERVED_ANNOTATION_PREFIXES):
                raise ValueError(f"annotation {k!r} is set by the operator; reserved: "
                                 + ", ".join(RESERVED_ANNOTATION_PREFIXES))
            if not _QUALIFIED_NAME.match(k) or len(k) > 316:
                raise ValueError(f"annotation key {k!r} is not a qualified name ([prefix/]name)")
        return v

    @field_validator("env")
    @classmethod
    def _env_unique(cls, v: list[EnvVar]) -> list[EnvVar]:
        names = [e.name for e in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"env names must be unique; repeated: {', '.join(dupes)}")
        return v


class SynthDatasetSpec(
    _Model,
    json_schema_extra=_cel(
        (
            "!has(self.categories) || self.categories.all(c, self.categories.exists_one(d, d.name == c.name))",
            "categories must not repeat a name", ".categories",
        ),
        ("!has(self.categories) || self.categories.exists(c, has(c.weight) && c.weight > 0)",
         "categories: at least one weight must be > 0", ".categories"),
        (
            "!has(self.categories) || self.categories.all(c, !has(c.assets) || c.assets.libraries.all(n, "
            "has(self.assets) && has(self.assets.libraries) && self.assets.libraries.exists(l, l.name == n)))",
            "categories[].assets.libraries must name libraries in spec.assets.libraries", ".categories",
        ),
        (
            "!has(self.categories) || self.categories.all(c, !has(c.render) || !("
            "(has(c.render.views) ? has(c.render.views.count) && c.render.views.count > 1 : has(self.render) && "
            "has(self.render.views) && has(self.render.views.count) && self.render.views.count > 1) && "
            "(has(c.render.frames) ? has(c.render.frames.count) && c.render.frames.count > 1 : has(self.render) && "
            "has(self.render.frames) && has(self.render.frames.count) && self.render.frames.count > 1)))",
            "categories[].render: views.count and frames.count cannot both be > 1 (with spec.render's as defaults)",
        ),
        (
            "!has(self.schedule) || self.schedule.all(s, self.schedule.exists_one(t, t.fromShard == s.fromShard))",
            "schedule segments must not repeat a fromShard",
        ),
    ),
):
    """A synthetic image dataset: what to render, where to write it, how fast and for how much."""

    samples: int = Field(ge=1, le=10**11, description="Target total number of samples.")
    seed: int = Field(0, ge=0, le=2**53, description="Dataset seed; each sample's seed derives from it.")
    version: str = Field(
        "1", pattern=VERSION_PATTERN, description="Dataset version; data lands under {dataset}/v{version}/."
    )
    shard_size: int = Field(
        1000, ge=1, le=100_000, description="Samples per shard (one WebDataset tar, one Job index); the last shard may be short."
    )
    categories: list[CategoryWeight] = Field(
        default_factory=lambda: [CategoryWeight(name=Category(c)) for c in ALL_CATEGORIES],
        min_length=1,
        max_length=11,
        description="Categories and weights; default: all 11 equally.",
    )
    render: RenderSpec = Field(default_factory=RenderSpec, description="Render settings.")
    quality: QualitySpec = Field(default_factory=QualitySpec, description="Quality gate.")
    output: OutputSpec = Field(description="Where the dataset is written.")
    throughput: ThroughputSpec = Field(default_factory=ThroughputSpec, description="Target rate and deadline.")
    workers: WorkersSpec = Field(default_factory=WorkersSpec, description="Bounds on rendering pods.")
    node_pool: NodePoolSpec = Field(default_factory=NodePoolSpec, description="GPU node pool placement.")
    pricing: PricingSpec = Field(default_factory=PricingSpec, description="GPU prices.")
    budget: BudgetSpec = Field(default_factory=BudgetSpec, description="Spending limit.")
    estimates: EstimatesSpec = Field(default_factory=EstimatesSpec, description="Planning assumptions.")
    retry: RetrySpec = Field(default_factory=RetrySpec, description="Retry limits.")
    assets: AssetsSpec = Field(
        default_factory=AssetsSpec, description="Mesh libraries, HDRI environments and PBR textures."
    )
    shards_per_batch: int | None = Field(
        None, ge=1, le=100_000, description="Shards per RenderBatch; default chosen by the planner."
    )
    image: str = Field(min_length=1, max_length=512, description="Renderer container image.")
    suspend: bool = Field(False, description="Pause: no new work, running Jobs scaled to zero.")
    queue: str | None = Field(
        None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Kueue LocalQueue: Jobs carry kueue.x-k8s.io/queue-name and start suspended until admitted.",
    )
    pod_template: PodTemplateSpec | None = Field(
        None, description="Labels, annotations, priority/runtime class, pull secrets, env, affinity, spread of render pods."
    )
    derived_from: DerivedFromSpec | None = Field(
        None, description="Derive this version from an earlier one: samples scoring under rerender.belowScore there "
        "are rendered again (with this version's seeds and render settings), the others copied.",
    )
    schedule: list[ScheduleSegment] = Field(
        default_factory=list,
        max_length=64,
        description="Append-only re-weighting: each segment sets the category weights from its fromShard on "
        "(fromShard strictly increasing); finished shards keep theirs.",
    )

    @model_validator(mode="after")
    def _derived(self) -> SynthDatasetSpec:
        if self.derived_from is not None and self.derived_from.version == self.version:
            raise ValueError(f"derivedFrom.version must name an earlier version, not this one ({self.version!r})")
        return self

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: list[ScheduleSegment]) -> list[ScheduleSegment]:
        for i in range(1, len(v)):
            if v[i].from_shard <= v[i - 1].from_shard:
                raise ValueError(f"schedule[{i}].fromShard {v[i].from_shard} must be greater than "
                                 f"schedule[{i - 1}].fromShard {v[i - 1].from_shard} (segments are append-only)")
        return v

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[CategoryWeight]) -> list[CategoryWeight]:
        names = [c.name for c in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"category names must be unique; repeated: {', '.join(map(str, dupes))}")
        if sum(c.weight for c in v) <= 0:
            raise ValueError("the weights sum to zero: at least one category needs weight > 0")
        return v

    @model_validator(mode="after")
    def _known_libraries(self) -> SynthDatasetSpec:
        known = {lib.name for lib in self.assets.libraries}
        for i, c in enumerate(self.categories):
            for name in (c.assets.libraries if c.assets else []):
                if name not in known:
                    allowed = ", ".join(sorted(known)) or "none defined"
                    raise ValueError(
                        f"categories[{i}].assets.libraries: unknown library {name!r} "
                        f"(spec.assets.libraries has: {allowed})"
                    )
        return self

    @model_validator(mode="after")
    def _category_views_or_frames(self) -> SynthDatasetSpec:
        for i, c in enumerate(self.categories):
            if c.render is None:
                continue
            views = c.render.views if c.render.views is not None else self.render.views
            frames = c.render.frames if c.render.frames is not None else self.render.frames
            if views.count > 1 and frames.count > 1:
                raise ValueError(
                    f"categories[{i}].render: views.count {views.count} and frames.count {frames.count} cannot "
                    "both be > 1 (spec.render's apply where the category sets none; set the other to count: 1)"
                )
        return self


class ObjectMeta(BaseModel):
    """The part of Kubernetes metadata that we check; everything else passes through."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Object name.")
    namespace: str | None = Field(None, max_length=63, pattern=DNS_LABEL, description="Namespace.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.match(DNS_LABEL, v) or len(v) > 63:
            raise ValueError(
                f"{v!r} is not a DNS label: 1-63 chars of a-z, 0-9 and '-', "
                "starting and ending with a letter or digit (it becomes a label value)"
            )
        return v


class SynthDataset(_Model):
    """A SynthDataset object as applied by a user."""

    api_version: Literal["parallelsynth.io/v1alpha1"] = Field("parallelsynth.io/v1alpha1", description="API version.")
    kind: Literal["SynthDataset"] = Field("SynthDataset", description="Kind.")
    metadata: ObjectMeta = Field(description="Object metadata.")
    spec: SynthDatasetSpec
    status: dict[str, Any] | None = None


# --------------------------------------------------------------------------- status parts


class Condition(_Status):
    """A Kubernetes-style condition."""

    type: str = Field(description="Condition type, e.g. SpecValid, Ready, Progressing, Degraded.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field("", description="CamelCase reason.")
    message: str = Field("", description="Human-readable detail.")
    last_transition_time: str | None = Field(None, description="When status last changed (RFC 3339).")


class Counts(_Status):
    target: int = Field(0, description="Target count.")
    completed: int = Field(0, description="Completed count (samples: committed and kept, quarantined ones apart).")
    failed: int = Field(0, description="Failed count.")
    quarantined: int = Field(0, description="Samples committed to the quarantine, not to the training shards.")


class ShardCounts(_Status):
    total: int = Field(0, description="Shards in the dataset.")
    completed: int = Field(0, description="Committed shards.")
    failed: int = Field(0, description="Shards that exhausted their retries.")


class CategoryProgress(_Status):
    target: int = Field(0, description="Target samples in this category.")
    completed: int = Field(0, description="Committed and kept samples in this category.")
    quarantined: int = Field(0, description="Samples of this category the quality gate quarantined.")


class WorkerCounts(_Status):
    desired: int = Field(0, description="Rendering pods the autoscaler wants.")
    active: int = Field(0, description="Rendering pods running now.")
    pending: int = Field(0, description="Pods waiting for capacity (not counted as workers).")
    unschedulable: int = Field(0, description="Pending pods the scheduler cannot place (no GPU capacity).")
    admitted: int | None = Field(None, description="With spec.queue: pods Kueue admitted (rendering or starting).")
    waiting: int | None = Field(None, description="With spec.queue: pods whose Jobs wait for Kueue admission.")
    admission: str | None = Field(
        None, description="With spec.queue: 'admitted/requested' pods, e.g. '3/8' (printer column).")
    samples_per_day_each: float = Field(0.0, description="Measured samples per day of one worker.")


class CostStatus(_Status):
    gpu_hours: float = Field(0.0, description="GPU-hours consumed.")
    spot_gpu_hours: float = Field(0.0, description="GPU-hours on spot capacity.")
    on_demand_gpu_hours: float = Field(0.0, description="GPU-hours on on-demand capacity.")
    dollars: float = Field(0.0, description="Dollars spent so far.")
    dollars_per1k_samples: float = Field(0.0, alias="dollarsPer1kSamples", description="$ per 1000 samples.")
    projected_dollars: float = Field(0.0, description="Projected total at the current rate.")


class FoldedStatus(_Status):
    """Totals of finished RenderBatches already folded into the dataset (then deleted)."""

    batches: str = Field("", description="Indexes of folded batches as ranges, e.g. '0-41'.")
    samples: int = Field(0, description="Samples committed by folded batches.")
    shards: int = Field(0, description="Shards committed by folded batches.")
    failed_shards: int = Field(0, description="Shards of folded batches that exhausted their retries.")
    failed_samples: int = Field(0, description="Samples in those failed shards.")
    preemptions: int = Field(0, description="Preemptions counted by folded batches.")
    retries: int = Field(0, description="Retries counted by folded batches.")
    gpu_seconds: float = Field(0.0, description="GPU-seconds of folded batches.")
    spot_gpu_seconds: float = Field(0.0, description="Spot GPU-seconds of folded batches.")
    categories: dict[str, int] = Field(default_factory=dict, description="Committed samples per category.")
    quarantined_samples: int = Field(0, description="Samples of folded batches committed to the quarantine.")
    quarantined_categories: dict[str, int] = Field(
        default_factory=dict, description="Quarantined samples of folded batches per category.")
    render_call_seconds: float = Field(0.0, description="Render-call seconds of folded batches' workers.")
    main_thread_seconds: float = Field(0.0, description="Main-thread seconds of folded batches' workers.")
    segments: dict[str, dict[str, int]] | None = Field(
        None, description="Committed samples of folded batches per schedule segment (by fromShard) and category; "
        "absent in statuses written before it existed.")


class PlanStatus(_Status):
    """The batch tiling fixed when the dataset was first planned (a spec edit cannot re-tile)."""

    shards_per_batch: int = Field(0, description="Shards per RenderBatch.")
    batches: int = Field(0, description="RenderBatches in the whole dataset.")
    live_batches: int = Field(0, description="RenderBatches alive now (bounded by workers.max).")


class AutoscalerStatus(_Status):
    """What the autoscaler remembers between ticks (bounded), and why it chose its count."""

    desired: int | None = Field(None, description="Desired workers after hysteresis.")
    recommended: int = Field(0, description="Workers the measured rate calls for, before hysteresis.")
    reason: str = Field("", description="What bounds the count: Target, Deadline, AtMax, BudgetBound, ...")
    rate_measured: bool = Field(False, description="False while the prior (estimates) still dominates.")
    last_change: float | None = Field(None, description="Epoch seconds of the last change of desired.")
    recommendations: list[list[float]] = Field(
        default_factory=list, description="Recent [epoch, workers] recommendations (scale-down window)."
    )
    capacity_mode: str | None = Field(None, description="spot or on-demand: where new pods go.")
    mode_since: float = Field(0.0, description="Epoch seconds since the capacity mode holds.")
    preemption_marks: list[list[float]] = Field(
        default_factory=list, description="Recent [epoch, cumulative preemptions] marks."
    )
    window: list[list[float]] = Field(
        default_factory=list,
        description="Throughput window: [epoch, samples, settled GPU-seconds, all GPU-seconds] points.",
    )


class IndexStatus(_Status):
    """The index Job that writes metadata.parquet/jsonl and dataset.json at the end."""

    phase: str = Field("Pending", description="Pending, Running, Succeeded or Failed.")
    job: str | None = Field(None, description="Name of the index Job.")


class SegmentStatus(_Status):
    """Category progress within one schedule segment."""

    from_shard: int = Field(0, description="First shard of the segment.")
    to_shard: int = Field(0, description="First shard after the segment.")
    categories: dict[str, CategoryProgress] = Field(default_factory=dict, description="Per-category progress.")


class SynthDatasetStatus(_Status):
    """Status of a SynthDataset; paths are read by printer columns, ArgoCD and dashboards."""

    phase: DatasetPhase = Field(DatasetPhase.PENDING, description="Lifecycle phase.")
    observed_generation: int = Field(0, description="Generation this status reflects.")
    conditions: list[Condition] = Field(default_factory=list, description="Conditions.")
    samples: Counts = Field(default_factory=Counts, description="Sample counts.")
    shards: ShardCounts = Field(default_factory=ShardCounts, description="Shard counts.")
    categories: dict[str, CategoryProgress] = Field(default_factory=dict, description="Per-category progress.")
    schedule: list[SegmentStatus] = Field(
        default_factory=list, description="With spec.schedule: category progress per segment."
    )
    samples_per_day: float = Field(0.0, description="Measured samples per day.")
    eta: str | None = Field(None, description="Estimated completion time (RFC 3339).")
    workers: WorkerCounts = Field(default_factory=WorkerCounts, description="Worker counts.")
    preemptions: int = Field(0, description="Pods preempted (spot notice, eviction).")
    retries: int = Field(0, description="Job attempts and pod retries after failures.")
    cost: CostStatus = Field(default_factory=CostStatus, description="Cost so far and projected.")
    progress: str | None = Field(None, description="Completed fraction, e.g. '42.0%' (printer column).")
    failed_shards: str | None = Field(None, description="Failed global shard ranges, e.g. '42,97-99'.")
    next_shard: int = Field(0, description="First shard not yet handed to a RenderBatch.")
    index: IndexStatus | None = Field(None, description="The final index Job (cluster mode).")
    capacity_mode: str | None = Field(None, description="spot or on-demand: where new pods go.")
    plan: PlanStatus = Field(default_factory=PlanStatus, description="Batch tiling and live batches.")
    folded: FoldedStatus = Field(default_factory=FoldedStatus, description="Totals of finished batches.")
    gpu_seconds: float = Field(0.0, description="GPU-seconds consumed by all batches.")
    spot_gpu_seconds: float = Field(0.0, description="GPU-seconds on spot capacity.")
    render_busy_ratio: float | None = Field(
        None, ge=0, le=1, description="Measured share of the workers' main-thread time inside Blender's render "
        "call, over the committed shards (printer column Busy; absent until a pod reports it).")
    autoscaler: AutoscalerStatus = Field(default_factory=AutoscalerStatus, description="Autoscaler state.")


class RenderBatchSpec(_Model):
    """A contiguous range of shards rendered by one Indexed Job per attempt."""

    dataset: str = Field(max_length=63, pattern=DNS_LABEL, description="Name of the owning SynthDataset.")
    shard_start: int = Field(ge=0, description="First global shard index of this batch.")
    shard_count: int = Field(ge=1, le=100_000, description="Number of shards (Job completions).")
    parallelism: int = Field(1, ge=0, le=100_000, description="Pods rendering at once (0 pauses).")
    backoff_limit_per_index: int = Field(3, ge=0, le=100, description="Pod retries per shard within one Job.")
    max_attempts: int = Field(3, ge=1, le=100, description="Job attempts before the batch is Failed.")
    capacity: Literal["spot", "on-demand"] = Field("spot", description="Capacity type for new pods.")


class RenderBatch(_Model):
    api_version: Literal["parallelsynth.io/v1alpha1"] = Field("parallelsynth.io/v1alpha1", description="API version.")
    kind: Literal["RenderBatch"] = Field("RenderBatch", description="Kind.")
    metadata: ObjectMeta = Field(description="Object metadata.")
    spec: RenderBatchSpec
    status: dict[str, Any] | None = None


class RenderBatchStatus(_Status):
    phase: BatchPhase = Field(BatchPhase.PENDING, description="Lifecycle phase.")
    attempt: int = Field(0, description="Current Job attempt (1-based).")
    job: str | None = Field(None, description="Name of the current Job.")
    completed_shards: str = Field("", description="Committed shards as ranges of offsets, e.g. '0-41,43'.")
    failed_shards: str = Field("", description="Failed shards as ranges of offsets.")
    quality_failed_shards: str = Field(
        "", description="Offsets the quality gate failed (exit 3): failed for good, never in a later attempt.")
    samples_completed: int = Field(0, description="Samples in committed shards, kept (quarantined ones apart).")
    samples_quarantined: int = Field(0, description="Samples its pods committed to the quarantine.")
    quarantined_categories: dict[str, int] = Field(default_factory=dict, description="Quarantined samples per category.")
    render_call_seconds: float = Field(
        0.0, description="Seconds its committed shards' workers spent inside Blender's render calls.")
    main_thread_seconds: float = Field(
        0.0, description="Those workers' main-thread seconds (render calls, other work, waiting for the pipeline).")
    shards_done: int = Field(0, description="Number of committed shards (printer column).")
    preemptions: int = Field(0, description="Pods preempted.")
    retries: int = Field(0, description="Pod retries and Job re-attempts.")
    gpu_seconds: float = Field(0.0, description="GPU-seconds consumed.")
    spot_gpu_seconds: float = Field(0.0, description="GPU-seconds on spot nodes.")
    conditions: list[Condition] = Field(default_factory=list, description="Conditions.")
    progress: str | None = Field(None, description="'done/total' shards (printer column).")
    observed_generation: int = Field(0, description="Generation of the batch this status reflects.")
    active: int = Field(0, description="Pods rendering now.")
    pending: int = Field(0, description="Pods waiting to start.")
    established: int = Field(0, description="Running pods older than one autoscaler tick (kept on scale-down).")
    unschedulable: int = Field(0, description="Pending pods with PodScheduled=False reason Unschedulable.")
    admitted: int = Field(0, description="With spec.queue: pods Kueue admitted for the current Job.")
    waiting: int = Field(0, description="With spec.queue: pods of the current Job waiting for admission.")
    evictions: int = Field(0, description="Kueue evictions of this batch's Jobs (counted in preemptions, not retries).")
    retry_after: str | None = Field(None, description="Earliest start of the next Job attempt (RFC 3339).")
    prior_failed_pods: int = Field(0, description="Pod failures of earlier attempts.")
    gpu_seconds_finished: float = Field(0.0, description="GPU-seconds of pods already finished.")
    spot_gpu_seconds_finished: float = Field(0.0, description="Of those, GPU-seconds on spot nodes.")
    gpu_seconds_settled: float | None = Field(
        None,
        description="GPU-seconds of all pods of shards already committed or failed for good "
        "(preempted attempts included): the autoscaler's rate is samples / this.",
    )
    finished_pods: list[str] = Field(
        default_factory=list, description="Recently finished pods ('epoch:name'), counted once (bounded)."
    )
    finished_before: float = Field(0.0, description="Pods that finished before this epoch are counted.")
    preempted_pods: list[str] = Field(
        default_factory=list, description="Recently preempted pods ('epoch:name'), counted once (bounded)."
    )
    preempted_before: float = Field(0.0, description="Pods preempted before this epoch are counted.")
    message: str | None = Field(None, description="Why the batch is in its phase.")

