"""EventBridge Scheduler expressions (the stack config's `training.schedule`) converted to the 5-field
Kubernetes cron of a training CronJob (training_job.cron_job), or refused with the reason when
Kubernetes cron cannot express them exactly.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure; tests/test_layout.py checks it).
"""
from __future__ import annotations

import re

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, lowest, highest, names numbered from lowest, whether '/' steps are allowed)
_CRON_FIELDS = (
    ("minutes", 0, 59, (), True),
    ("hours", 0, 23, (), True),
    ("day-of-month", 1, 31, (), True),
    ("month", 1, 12, _MONTHS, True),
    ("day-of-week", 1, 7, _DAYS, False),
)
_ITEM = re.compile(r"^(?P<range>\*|[A-Za-z0-9]+(-[A-Za-z0-9]+)?)(/(?P<step>\d+))?$")


def _cron_value(token: str, *, name: str, low: int, high: int, names: tuple[str, ...], expression: str) -> int:
    if token.isdigit():
        value = int(token)
    elif token.upper() in names:
        value = low + names.index(token.upper())
    else:
        allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
        raise ValueError(f"schedule {expression!r}: {name} value {token!r}; allowed: {allowed}")
    if not low <= value <= high:
        raise ValueError(f"schedule {expression!r}: {name} value {token!r} is outside {low}-{high}")
    return value


def _cron_field(text: str, *, index: int, expression: str) -> str:
    name, low, high, names, steps = _CRON_FIELDS[index]
    if text == "?":
        return "*"
    items = []
    for item in text.split(","):
        for part in re.split(r"[-/]", item):
            if part == "*" or part.isdigit() or part.upper() in names:
                continue
            for special, meaning in (("#", "nth weekday of the month"), ("L", "last"), ("W", "nearest weekday")):
                if special in part.upper():
                    raise ValueError(
                        f"schedule {expression!r}: {name} {text!r} uses '{special}' ({meaning}), which Kubernetes "
                        "cron does not support; allowed: numbers, names, '*', ',', '-' and '/'"
                    )
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"schedule {expression!r}: {name} {text!r} is not a cron field ({item!r})")
        if match["step"] is not None:
            if not steps:
                raise ValueError(f"schedule {expression!r}: {name} {text!r}: EventBridge allows no '/' step in {name}")
            if int(match["step"]) < 1:
                raise ValueError(f"schedule {expression!r}: {name} {text!r}: a step must be at least 1")
        if match["range"] == "*":
            items.append(item)
            continue
        bounds = match["range"].split("-")
        values = [_cron_value(b, name=name, low=low, high=high, names=names, expression=expression) for b in bounds]
        if len(values) == 2 and values[0] > values[1]:
            raise ValueError(
                f"schedule {expression!r}: {name} range {match['range']!r} runs backwards; Kubernetes cron needs start <= end"
            )
        if name == "day-of-week":
            # EventBridge numbers days 1-7 from Sunday, Kubernetes 0-6 from Sunday; names mean the same.
            bounds = [str(int(b) - 1) if b.isdigit() else b for b in bounds]
        items.append("-".join(bounds) + (f"/{match['step']}" if match["step"] is not None else ""))
    return ",".join(items)


def _rate(amount: int, *, unit: str, expression: str) -> str:
    minutes = amount * {"minute": 1, "hour": 60, "day": 1440}[unit]
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60 == 0 and minutes < 1440 and 1440 % minutes == 0:
        hours = minutes // 60
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if minutes == 1440:
        return "0 0 * * *"
    if minutes == 7 * 1440:
        return "0 0 * * 0"
    raise ValueError(
        f"schedule {expression!r}: a period of {amount} {unit}(s) has no exact Kubernetes cron equivalent "
        "(cron repeats within the hour, the day or the week); allowed: minutes dividing 60, hours dividing 24, "
        "1 day or 7 days, or a cron(...) expression"
    )


def cron_for_kubernetes(expression: str) -> str:
    """Convert an EventBridge Scheduler expression to a 5-field Kubernetes cron (UTC).

    `cron(min hour day-of-month month day-of-week year)`: '?' becomes '*', day-of-week numbers 1-7
    (Sunday = 1) become 0-6, names pass unchanged; the year must be '*'; L, W and # have no
    Kubernetes equivalent. `rate(N unit)` keeps its period where cron can express it exactly (its
    phase is then the clock's: rate(1 hour) runs on the hour, not N minutes after creation).
    """
    text = expression.strip()
    rate = re.fullmatch(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)", text)
    if rate:
        amount = int(rate[1])
        if amount < 1:
            raise ValueError(f"schedule {expression!r}: the rate must be at least 1")
        return _rate(amount, unit=rate[2].rstrip("s"), expression=expression)
    cron = re.fullmatch(r"cron\((.*)\)", text)
    if not cron:
        raise ValueError(f"schedule {expression!r}: expected cron(min hour day-of-month month day-of-week year) or rate(N minutes|hours|days)")
    fields = cron[1].split()
    if len(fields) != 6:
        raise ValueError(
            f"schedule {expression!r}: EventBridge cron takes 6 fields (minutes hours day-of-month month "
            f"day-of-week year), got {len(fields)}"
        )
    if fields[5] != "*":
        raise ValueError(f"schedule {expression!r}: year {fields[5]!r}; Kubernetes cron has no year field, allowed: '*'")
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ValueError(
            f"schedule {expression!r}: EventBridge needs '?' in exactly one of day-of-month ({fields[2]!r}) and "
            f"day-of-week ({fields[4]!r})"
        )
    return " ".join(_cron_field(fields[i], index=i, expression=expression) for i in range(5))
