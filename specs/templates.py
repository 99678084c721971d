"""The one jinja2 environment for every template we render: a missing variable fails loudly.

Must not import: `pulumi`, `pulumi_aws`, `pulumi_kubernetes`, `pulumi_policy`, `components`, `mlops`,
`mlops_training` or `mlops_serving` (pure: computed without a Pulumi runtime; the layers above build on
specifications, never the reverse)."""
from __future__ import annotations

import json
from pathlib import Path

import jinja2

TEMPLATE_DIR = Path(__file__).parent / "templates"

ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    undefined=jinja2.StrictUndefined,
    # HTML templates are escaped; JSON and YAML templates must not be.
    autoescape=lambda name: name is not None and ".html" in name,
    keep_trailing_newline=True,
)
ENV.filters["tojson"] = lambda value: json.dumps(value)


def render(name: str, **context: object) -> str:
    """Render `templates/<name>` with `context`."""
    return ENV.get_template(name).render(**context)
