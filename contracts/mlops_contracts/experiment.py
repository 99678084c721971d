"""Online-experiment readout contract: `mlops experiment shadow` and `mlops experiment ab` -> their readers
(the rollout that decides on a shadow's verdict, CI, people) (docs/contracts.md section 9).

Two JSON documents, told apart by `kind`:

- `shadow` (ShadowReadout): a shadow variant against its champion on the same mirrored requests, each
  check with its figures, and a verdict `passed`, `failed` or `insufficient` (too few joined requests
  to decide) with its reason;
- `ab` (ABReadout): each production variant's metrics with 95 % intervals from captures joined with
  ground truth, the test of the primary metric between champion and challenger, the labelled traffic
  still needed for the minimum detectable effect, and a recommendation `keep`, `promote` or `stop`.

`to_dict`/`dumps`/`write` produce them; `parse`/`loads`/`read` validate them (ReadoutFormatError naming
the field, the value and what is allowed).

Must not import: anything outside the standard library, so no `pulumi` or its providers, `components`,
`specs`, `mlops`, `mlops_training` or `mlops_serving` (the containers install this package on its own).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
KIND_SHADOW = "shadow"
KIND_AB = "ab"
KINDS = (KIND_SHADOW, KIND_AB)
SHADOW_FILE = "shadow.json"
AB_FILE = "ab.json"

VERDICT_PASSED = "passed"
VERDICT_FAILED = "failed"
VERDICT_INSUFFICIENT = "insufficient"
VERDICTS = (VERDICT_PASSED, VERDICT_FAILED, VERDICT_INSUFFICIENT)

KEEP = "keep"
"""Not enough evidence yet: the champion keeps its traffic and the test goes on."""
PROMOTE = "promote"
"""The challenger is significantly better on the primary metric."""
STOP = "stop"
"""The challenger is significantly worse, or the planned sample showed no difference worth having."""
RECOMMENDATIONS = (KEEP, PROMOTE, STOP)


class ReadoutFormatError(ValueError):
    """A readout document that does not follow this contract."""


@dataclass(frozen=True)
class Check:
    """One check of a shadow analysis: its measured value against its threshold."""

    name: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str


@dataclass(frozen=True)
class ShadowReadout:
    stack: str
    endpoint: str
    champion: str
    shadow: str
    task: str
    since: str | None
    generated: str
    requests: dict[str, int]
    """champion, shadow (captured), joined (answered by both), min_requests."""
    checks: tuple[Check, ...]
    differences: dict[str, Any]
    """quantiles {p01..p99} of shadow - champion prediction, histogram {edges, counts}."""
    latency: dict[str, Any]
    """source (where the figures come from) and, per variant, p50_ms and p99_ms."""
    errors: dict[str, Any]
    """Per variant: requests, errors, rate."""
    verdict: str
    reason: str


@dataclass(frozen=True)
class VariantReadout:
    name: str
    weight: float
    captured: int
    """Predictions captured (rows)."""
    labelled: int
    """Of those, joined with a ground-truth label."""
    metrics: dict[str, dict[str, float]]
    """metric -> {value, ci_low, ci_high} (95 %)."""


@dataclass(frozen=True)
class ABReadout:
    stack: str
    endpoint: str
    task: str
    primary_metric: str
    champion: str
    challenger: str
    since: str | None
    generated: str
    variants: tuple[VariantReadout, ...]
    test: dict[str, Any]
    """metric, method, statistic, p_value, difference (challenger - champion), alpha, significant, better."""
    sample_size: dict[str, Any]
    """min_detectable_effect, alpha, power, per_variant (labelled requests needed), more_needed."""
    recommendation: str
    reason: str


def _clean(value: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_dict(readout: ShadowReadout | ABReadout) -> dict[str, Any]:
    kind = KIND_SHADOW if isinstance(readout, ShadowReadout) else KIND_AB
    return _clean({"format_version": FORMAT_VERSION, "kind": kind, **asdict(readout)})


def dumps(readout: ShadowReadout | ABReadout) -> str:
    return json.dumps(to_dict(readout), indent=2, sort_keys=True) + "\n"


def write(readout: ShadowReadout | ABReadout, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(readout), encoding="utf-8")
    return path


def _get(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, *, optional: bool = False) -> Any:
    if key not in doc:
        raise ReadoutFormatError(f"{where}: {key!r} is missing")
    value = doc[key]
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
        allowed = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ReadoutFormatError(f"{where}: {key!r} is {value!r}; allowed a {allowed}")
    return value


def _one_of(value: str, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise ReadoutFormatError(f"{where}: {value!r}; allowed {', '.join(allowed)}")
    return value


_NUMBER = (int, float)
_SCALARS: dict[str, Any] = {"stack": str, "endpoint": str, "task": str, "generated": str, "reason": str}


def _common(doc: Any, source: str, kind: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ReadoutFormatError(f"{source}: a readout is a JSON object, got {type(doc).__name__}")
    version = _get(doc, "format_version", int, source)
    if version != FORMAT_VERSION:
        raise ReadoutFormatError(f"{source}: format_version {version}; allowed {FORMAT_VERSION}")
    _one_of(_get(doc, "kind", str, source), (kind,), f"{source}: kind")
    return {key: _get(doc, key, t, source) for key, t in _SCALARS.items()} | {"since": _get(doc, "since", str, source, optional=True)}


def _parse_shadow(doc: dict[str, Any], source: str) -> ShadowReadout:
    checks = []
    for i, raw in enumerate(_get(doc, "checks", list, source)):
        where = f"{source}: checks[{i}]"
        if not isinstance(raw, dict):
            raise ReadoutFormatError(f"{where}: a check is an object")
        checks.append(Check(name=_get(raw, "name", str, where), passed=_get(raw, "passed", bool, where),
                            value=_get(raw, "value", _NUMBER, where, optional=True),
                            threshold=_get(raw, "threshold", _NUMBER, where, optional=True), detail=_get(raw, "detail", str, where)))
    requests = _get(doc, "requests", dict, source)
    for key in ("champion", "shadow", "joined", "min_requests"):
        _get(requests, key, int, f"{source}: requests")
    return ShadowReadout(
        **_common(doc, source, KIND_SHADOW), champion=_get(doc, "champion", str, source), shadow=_get(doc, "shadow", str, source),
        requests=requests, checks=tuple(checks), differences=_get(doc, "differences", dict, source),
        latency=_get(doc, "latency", dict, source), errors=_get(doc, "errors", dict, source),
        verdict=_one_of(_get(doc, "verdict", str, source), VERDICTS, f"{source}: verdict"),
    )


def _parse_variant(raw: Any, where: str) -> VariantReadout:
    if not isinstance(raw, dict):
        raise ReadoutFormatError(f"{where}: a variant is an object")
    metrics = _get(raw, "metrics", dict, where)
    for name, estimate in metrics.items():
        if not isinstance(estimate, dict):
            raise ReadoutFormatError(f"{where}: metrics.{name} is an object {{value, ci_low, ci_high}}")
        for key in ("value", "ci_low", "ci_high"):
            _get(estimate, key, _NUMBER, f"{where}: metrics.{name}", optional=True)
    return VariantReadout(name=_get(raw, "name", str, where), weight=_get(raw, "weight", _NUMBER, where),
                          captured=_get(raw, "captured", int, where), labelled=_get(raw, "labelled", int, where), metrics=metrics)


def _parse_ab(doc: dict[str, Any], source: str) -> ABReadout:
    variants = tuple(_parse_variant(v, f"{source}: variants[{i}]") for i, v in enumerate(_get(doc, "variants", list, source)))
    test = _get(doc, "test", dict, source)
    _get(test, "p_value", _NUMBER, f"{source}: test", optional=True)
    _get(test, "significant", bool, f"{source}: test")
    sample = _get(doc, "sample_size", dict, source)
    _get(sample, "more_needed", int, f"{source}: sample_size", optional=True)
    return ABReadout(
        **_common(doc, source, KIND_AB), primary_metric=_get(doc, "primary_metric", str, source),
        champion=_get(doc, "champion", str, source), challenger=_get(doc, "challenger", str, source), variants=variants,
        test=test, sample_size=sample,
        recommendation=_one_of(_get(doc, "recommendation", str, source), RECOMMENDATIONS, f"{source}: recommendation"),
    )


def parse(doc: Any, *, source: str = "readout") -> ShadowReadout | ABReadout:
    """Validate a parsed readout document (either kind)."""
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind == KIND_SHADOW:
        return _parse_shadow(doc, source)
    if kind == KIND_AB:
        return _parse_ab(doc, source)
    raise ReadoutFormatError(f"{source}: kind {kind!r}; allowed {', '.join(KINDS)}")


def loads(text: str, *, source: str = "readout") -> ShadowReadout | ABReadout:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReadoutFormatError(f"{source}: not JSON: {exc}") from None
    return parse(doc, source=source)


def read(path: str | Path) -> ShadowReadout | ABReadout:
    path = Path(path)
    return loads(path.read_text(encoding="utf-8"), source=str(path))


FIELDS = {KIND_SHADOW: [f.name for f in fields(ShadowReadout)], KIND_AB: [f.name for f in fields(ABReadout)]}
"""The top-level fields of each kind, beside `format_version` and `kind`."""
