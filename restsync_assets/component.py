"""`restsync_assets.RestSyncComponent`: a folder of specs as a Dagster `dg` component.

```yaml
# defs/<name>/defs.yaml
type: restsync_assets.RestSyncComponent
attributes:
  specs_dir: specs                 # relative to this defs.yaml
  translation:                     # optional: Dagster's asset attributes, per asset
    key_prefix: [raw]
    group_name: "{{ source.name }}_api"
```

The component builds what `restsync_assets.definitions` builds for a folder of specs (assets,
asset checks, schedules, the checks job, credentials resources). `translation` takes the
attributes every Dagster component takes (`key`, `key_prefix`, `group_name`, `owners`,
`tags`, `metadata`, `description`, `kinds`, `automation_condition`, ...), rendered per asset
with `source` (the spec), `resource` (the resource) and `spec` (the asset spec) in scope.
A renamed key is used everywhere: the child's dependency on its parent, the asset checks,
the schedules.

`dg scaffold defs restsync_assets.RestSyncComponent <path>` writes `<path>/defs.yaml` and a
starter spec `<path>/specs/<name>.yaml`.
"""

# no `from __future__ import annotations`: Dagster reads the field annotations at run time

import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from dagster import (
    AssetKey,
    AssetSpec,
    Component,
    ComponentLoadContext,
    Definitions,
    Resolvable,
    Scaffolder,
    ScaffoldRequest,
    map_asset_specs,
    scaffold_component,
    scaffold_with,
)
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver

from restsync_assets.specs.errors import SpecError
from restsync_assets.specs.model import ResourceSpec, SourceSpec


@dataclass(frozen=True)
class RestSyncTranslatorData:
    """What a `translation` sees of one asset: its spec (`source`) and its `resource`."""

    source: SourceSpec
    resource: ResourceSpec


def _template_vars(data: RestSyncTranslatorData) -> dict:
    return {"source": data.source, "resource": data.resource, "data": data}


class RestSyncScaffolder(Scaffolder):
    """`dg scaffold defs restsync_assets.RestSyncComponent <path>`: defs.yaml + a starter spec."""

    def scaffold(self, request: ScaffoldRequest) -> None:
        if request.scaffold_format != "yaml":
            scaffold_component(request, {"specs_dir": "specs"})
            return
        target = Path(request.target_path)
        name = spec_name_for(target.name)
        (target / "specs").mkdir(parents=True, exist_ok=True)
        (target / "defs.yaml").write_text(DEFS_YAML.format(type=request.type_name), "utf-8")
        starter = target / "specs" / f"{name}.yaml"
        if not starter.exists():
            starter.write_text(STARTER_SPEC.format(name=name, env=name.upper()), "utf-8")


@scaffold_with(RestSyncScaffolder)
@dataclass
class RestSyncComponent(Component, Resolvable):
    """A folder of restsync specs as Dagster assets: one per REST resource, loaded by dlt.

    Each spec becomes an asset group with asset checks, schedules and a credentials resource;
    each resource an asset loading its table of the warehouse.
    """

    specs_dir: str
    """Folder of spec files, relative to the defs.yaml."""

    translation: (
        Annotated[
            TranslationFn[RestSyncTranslatorData],
            TranslationFnResolver[RestSyncTranslatorData](_template_vars),
        ]
        | None
    ) = None
    """Asset attributes applied to every asset (`key_prefix`, `group_name`, `owners`, ...)."""

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        from restsync_assets.specs import read_specs

        specs, problems = read_specs(Path(context.path) / self.specs_dir)
        return build_component_definitions(specs, self.translation, problems)


def build_component_definitions(
    specs: Sequence[SourceSpec],
    translation: TranslationFn[RestSyncTranslatorData] | None = None,
    problems: Sequence[SpecError] = (),
) -> Definitions:
    """restsync's definitions for `specs`, each asset passed through `translation`; a
    stand-in asset for each spec file in `problems` (`restsync_assets.spec_problems`)."""
    from restsync_assets.definitions import build_definitions

    if translation is None:
        return _mergeable(build_definitions(specs, problems))
    renamed, translated = translate(specs, translation)
    return _mergeable(build_definitions(renamed, problems), translated)


def _mergeable(
    defs: Definitions, translated: Callable[[AssetSpec], AssetSpec] | None = None
) -> Definitions:
    """`defs` as several components can merge them: one dlt resource object for all (Dagster
    merges resources of the same key only when they are the same object), and no
    `restsync_checks` job (one job per code location; `checks.checks_job()` adds it where wanted).
    `translated` maps each asset spec (`dagster.map_asset_specs`, public and stable, where
    `Definitions.map_asset_specs` is marked preview)."""
    from restsync_assets.checks import CHECKS_JOB
    from restsync_assets.resources import DLT_RESOURCE_KEY

    assets = defs.assets or []
    return Definitions(
        assets=assets if translated is None else map_asset_specs(translated, assets),
        asset_checks=defs.asset_checks,
        schedules=defs.schedules,
        sensors=defs.sensors,
        jobs=[j for j in defs.jobs or [] if j.name != CHECKS_JOB],
        resources={**(defs.resources or {}), DLT_RESOURCE_KEY: _dlt_resource()},
        executor=defs.executor,
    )


@lru_cache(maxsize=1)
def _dlt_resource() -> Any:
    from dagster_dlt import DagsterDltResource

    return DagsterDltResource()


def translate(
    specs: Sequence[SourceSpec], translation: TranslationFn[RestSyncTranslatorData]
) -> tuple[list[SourceSpec], Callable[[AssetSpec], AssetSpec]]:
    """Specs that carry their translated asset keys, and a function translating the rest of
    each asset's spec (applied to the spec Dagster built: partitions and deps kept)."""
    from restsync_assets.assets import RestsyncTranslator

    renamed, owner = [], {}
    for spec in specs:
        base = RestsyncTranslator(spec)
        keys = {}
        for resource in spec.resources:
            data = RestSyncTranslatorData(spec, resource)
            keys[resource.name] = tuple(translation(base.spec_for(resource), data).key.path)
        spec = spec.model_copy(update={"asset_keys": keys})
        renamed.append(spec)
        owner.update({AssetKey(list(keys[r.name])): (spec, r) for r in spec.resources})

    def translated(asset: AssetSpec) -> AssetSpec:
        if asset.key not in owner:
            return asset
        spec, resource = owner[asset.key]
        untranslated = asset.replace_attributes(key=AssetKey([spec.name, resource.name]))
        return translation(untranslated, RestSyncTranslatorData(spec, resource))

    return renamed, translated


def spec_name_for(folder: str) -> str:
    """A spec name (snake_case) from a folder name: `My-API` -> `my_api`."""
    name = re.sub(r"[^a-z0-9]+", "_", folder.lower()).strip("_") or "my_api"
    return name if name[0].isalpha() else f"api_{name}"


DEFS_YAML = textwrap.dedent(
    """\
    type: {type}
    attributes:
      specs_dir: specs              # folder of restsync specs, relative to this file
      # translation:                # optional: Dagster's asset attributes for every asset
      #   key_prefix: [raw]
      #   group_name: "{{{{ source.name }}}}"
      #   owners: [team:data-eng]
    """
)

STARTER_SPEC = textwrap.dedent(
    """\
    # A restsync spec: dlt's rest_api_source config plus a name. Every resource becomes a
    # Dagster asset [{name}, <resource>] loading table {name}.<resource> of the warehouse.
    # Check it with `restsync validate <this folder>`, try a resource against the API with
    # `restsync preview {name} items`. Secrets never go here: set {env}_CLIENT_ID and
    # {env}_CLIENT_SECRET (OAuth) in the environment. {env}_BASE_URL overrides base_url.
    name: {name}
    description: Starter spec; point base_url at your API and list its resources.
    client:
      base_url: https://api.example.com
      # auth: {{type: oauth2, token_url: https://api.example.com/oauth2/token}}
    resource_defaults:
      primary_key: id
      write_disposition: merge
    resources:
      - name: items
        endpoint:
          path: /v1/items
          data_selector: data
          # paginator: {{type: offset, limit: 100}}
    """
)
