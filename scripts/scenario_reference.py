"""Print the scenario field reference of README.md from the pydantic models themselves.

    python scripts/scenario_reference.py            # print the markdown
    python scripts/scenario_reference.py --check    # exit 1 if README.md is out of date
    python scripts/scenario_reference.py --write    # rewrite the README section

The section sits between the markers ``<!-- scenario-reference:start -->`` and
``<!-- scenario-reference:end -->``; a test runs ``--check`` so the README stays true.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from simlab import registry
from simlab.scenario import (
    AgentResources,
    ExecutionSection,
    OutputSection,
    PlatformSection,
    Scenario,
    WorldSection,
)

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- scenario-reference:start -->", "<!-- scenario-reference:end -->"


def _type(ann: Any) -> str:
    import typing

    generic = typing.get_origin(ann) is not None
    text = str(ann) if generic else (getattr(ann, "__name__", None) or str(ann))
    return text.replace("typing.", "").replace("simlab.scenario.", "").replace("|", "\\|")


def _default(field) -> str:
    if field.default is not PydanticUndefined:
        return f"`{field.default!r}`" if field.default is not None else "`None`"
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(computed)"
        if isinstance(value, BaseModel):
            return "(section defaults)"
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            value = [v.model_dump(exclude_none=True) for v in value]
        return f"`{value!r}`"
    return "**required**"


def _constraints(field) -> str:
    parts = []
    for m in field.metadata:
        for key, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            v = getattr(m, key, None)
            if v is not None:
                parts.append(f"{sym} {v}")
        if getattr(m, "min_length", None) is not None:
            parts.append(f"min length {m.min_length}")
    return ", ".join(parts)


def table(model: type[BaseModel], prefix: str, skip: tuple[str, ...] = ()) -> str:
    """A markdown table of a model's fields."""
    rows = ["| field | type | default | allowed | description |", "|---|---|---|---|---|"]
    for name, f in model.model_fields.items():
        if name in skip:
            continue
        rows.append(
            f"| `{prefix}{name}` | {_type(f.annotation)} | {_default(f)} | "
            f"{_constraints(f)} | {f.description or ''} |"
        )
    return "\n".join(rows)


def reference() -> str:
    """The whole reference section."""
    out = ["#### Top level", "", table(Scenario, ""), ""]
    out += ["#### `world`", "", table(WorldSection, "world."), ""]
    out += ["#### `platform`", "", table(PlatformSection, "platform."), ""]
    out += ["#### `output`", "", table(OutputSection, "output."), ""]
    resources = table(AgentResources, "execution.agent_resources.").split("\n", 2)[2]
    out += ["#### `execution`", "", table(ExecutionSection, "execution.") + "\n" + resources, ""]
    sections = [
        ("users", "users", "users."),
        ("content", "content", "content."),
        ("agents", "agents", "agents[i]."),
        ("rerankers", "rerankers", "platform.rerankers[i]."),
    ]
    for kind, title, prefix in sections:
        for name in registry.names(kind):
            cls = registry.resolve(kind, name)
            params = getattr(cls, "Params", None)
            out.append(f"#### `{title}` model `{name}` ({cls.__module__}:{cls.__name__})")
            out.append("")
            doc = (cls.__doc__ or "").strip().splitlines()[0]
            out.append(doc)
            out.append("")
            if params is None or not params.model_fields:
                out.append("No parameters.")
            else:
                out.append(table(params, prefix))
                for fname, f in params.model_fields.items():
                    ann = f.annotation
                    inner = getattr(ann, "__args__", (ann,))
                    for sub in inner:
                        if isinstance(sub, type) and issubclass(sub, BaseModel):
                            many = sub is not ann  # list[Model] rather than Model
                            head = "Each entry of" if many else "Keys of the section"
                            out += ["", f"{head} `{prefix}{fname}`:", "", table(sub, "")]
            out.append("")
    out.append("#### `metrics`")
    out.append("")
    out.append("| name | columns |")
    out.append("|---|---|")
    for name in registry.names("metrics"):
        cls = registry.resolve("metrics", name)
        out.append(f"| `{name}` | {', '.join(f'`{c}`' for c in cls.columns)} |")
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    """Print, check or write the README section."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    ref = reference()
    if not (args.check or args.write):
        sys.stdout.write(ref)
        return 0
    text = README.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    new = f"{head}{START}\n{ref}{END}{tail}"
    if args.write:
        README.write_text(new, encoding="utf-8")
        return 0
    if new != text:
        print(
            "README.md scenario reference is out of date: "
            "python scripts/scenario_reference.py --write"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
