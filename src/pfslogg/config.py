"""Configuration: schema validation (config/schema.yaml) plus the checks a schema cannot express.

The Snakefile calls ``validate_config`` (every schema violation as one line ``config: <key>: <what
was expected>``) and then ``check_config``; library users call ``load_config(path)`` which does both
without Snakemake.
"""

import copy
import difflib
import functools
import math
import re
from pathlib import Path

import yaml

from . import PARAMS
from .errors import InputError
from .data.gridio import SOURCE_AXES

# The schema ships inside the package (package data), so the library validates configs however it is
# installed (wheel, editable, conda); config/schema.yaml in the repository is a link to it.
SCHEMA = Path(__file__).resolve().with_name("schema.yaml")


def _filling_validator(schema_path):
    """A jsonschema validator of the schema that fills defaults as it goes (as
    snakemake.utils.validate does)."""
    import jsonschema

    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    validator_cls = jsonschema.validators.validator_for(schema)

    def set_defaults(validator, properties, instance, schema):
        for prop, sub in properties.items():
            if isinstance(instance, dict) and "default" in sub:
                instance.setdefault(prop, copy.deepcopy(sub["default"]))
        yield from validator_cls.VALIDATORS["properties"](validator, properties, instance, schema)

    filling = jsonschema.validators.extend(validator_cls, {"properties": set_defaults})
    return filling(schema)


_TYPE_NAMES = {"integer": "an integer", "number": "a number", "string": "a string", "object": "a mapping",
               "array": "a list", "boolean": "true or false", "null": "null"}


def _show(value, width=60):
    """A config value as the user would recognise it, on one short line."""
    if value is None or isinstance(value, bool):
        text = {None: "null", True: "true", False: "false"}[value]
    else:
        text = " ".join(repr(value).split())
    return text if len(text) <= width else text[:width - 3] + "..."


def _key_path(path):
    """('experiments', 'benchmark', 'sizes', 0) -> 'experiments.benchmark.sizes[0]'."""
    out = ""
    for k in path:
        if not isinstance(k, int) and not (str(k).isprintable() and str(k).strip() == str(k) and str(k)):
            k = repr(str(k))   # a key with control characters or blanks: quoted, so the message stays one line
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out or "(top level)"


def _one_line(text):
    """``text`` with control characters (line and record separators included) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _suggest(word, choices):
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _explain(e):
    """(key path, what was expected) pairs for one jsonschema error: never the schema or the whole
    instance, only the expectation and the value given."""
    path, v, value = tuple(e.absolute_path), e.validator_value, e.instance
    if e.validator == "additionalProperties" and isinstance(value, dict):
        allowed = list(e.schema.get("properties", {}))
        patterns = list(e.schema.get("patternProperties", {}))
        extra = [k for k in value if k not in allowed and not any(re.search(p, str(k)) for p in patterns)]
        return [(path + (k,), "unknown key" + _suggest(k, allowed)) for k in extra]
    if e.validator == "required" and isinstance(value, dict):
        return [(path + (k,), "required key missing") for k in v if k not in value]
    if e.validator == "type":
        types = [v] if isinstance(v, str) else list(v)
        return [(path, f"expected {' or '.join(_TYPE_NAMES.get(t, t) for t in types)}, got {_show(value)}")]
    if e.validator == "enum":
        hint = _suggest(value, v) if isinstance(value, str) else ""
        return [(path, f"expected one of {', '.join(_show(x) for x in v)}, got {_show(value)}{hint}")]
    bounds = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    if e.validator in bounds:
        return [(path, f"expected a number {bounds[e.validator]} {v}, got {_show(value)}")]
    if e.validator in ("minItems", "maxItems"):
        most = "at least" if e.validator == "minItems" else "at most"
        return [(path, f"expected {most} {v} item{'s' if v != 1 else ''}, got {len(value)} ({_show(value)})")]
    if e.validator == "pattern":
        return [(path, f"expected a string matching {v!r}, got {_show(value)}")]
    return [(path, " ".join(str(e.message).split())[:200])]


def validate_config(cfg, where="config", schema=SCHEMA):
    """Validate ``cfg`` against the schema, filling defaults in place; returns cfg.

    Every violation becomes one line ``<where>: <dotted.key.path>: <what was expected>`` (an unknown
    key with a did-you-mean among the allowed keys; a wrong type, value or bound with the expectation
    and the value given), sorted by key path; all of them are raised together as one InputError.
    """
    found = {}
    for e in _filling_validator(schema).iter_errors(cfg):
        for path, what in _explain(e):
            found.setdefault((path, what), None)

    def order(item):
        path, what = item
        return [(0, k, "") if isinstance(k, int) else (1, 0, str(k)) for k in path], what

    lines = [f"{where}: {_key_path(path)}: {_one_line(what)}" for path, what in sorted(found, key=order)]
    if lines:
        raise InputError("\n".join(lines))
    return cfg


@functools.lru_cache(maxsize=4)
def _integer_keys(schema_path):
    """Key paths (tuples) of every property the schema types as integer, following $refs."""
    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    out = []

    def walk(node, prefix):
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
        if node.get("type") == "integer":
            out.append(prefix)
        for k, sub in node.get("properties", {}).items():
            walk(sub, prefix + (k,))

    walk(schema, ())
    return tuple(out)


def _check_values(cfg, where):
    """Every number finite, no recursive YAML aliases (keys named); integer-valued floats at integer
    keys (``n: 20000.0``, accepted by JSON schema) made ints, so that ``range(n)`` and friends work."""
    done = set()

    def walk(node, key, ancestors):
        if isinstance(node, (dict, list)):
            if id(node) in ancestors:
                raise InputError(f"{where}: config key '{key}': refers to itself (recursive YAML alias)")
            if id(node) in done:  # shared by YAML aliases: checked once
                return
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for k, v in items:
                walk(v, f"{key}.{k}" if key else str(k), ancestors | {id(node)})
            done.add(id(node))
        elif isinstance(node, float) and not math.isfinite(node):
            raise InputError(f"{where}: config key '{key}': {node} is not a finite number")

    walk(cfg, "", frozenset())
    for keys in _integer_keys(SCHEMA):
        node = cfg
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        v = node.get(keys[-1]) if isinstance(node, dict) else None
        if isinstance(v, float) and v.is_integer():
            node[keys[-1]] = int(v)


def check_config(cfg, where="config"):
    """Semantic checks; raises InputError naming the key. Returns cfg."""
    _check_values(cfg, where)
    axes = SOURCE_AXES[cfg["grid"]["source"]]
    for p in PARAMS:
        lo, hi = cfg["params"][p]
        vmin, vmax, _ = axes[p]
        if hi < lo:
            raise InputError(f"{where}: params.{p}: expected lo <= hi, got [{lo}, {hi}]")
        if lo < vmin or hi > vmax:
            raise InputError(f"{where}: params.{p}: range [{lo}, {hi}] is outside the "
                             f"{cfg['grid']['source']} grid's axis [{vmin}, {vmax}]")
    if cfg["params"]["log_g"][1] <= cfg["params"]["log_g"][0]:
        raise InputError(f"{where}: params.log_g: the target must vary (lo < hi)")
    if cfg["grid"]["source"] != "synth" and not cfg["grid"].get("root"):
        raise InputError(f"{where}: grid.root: required for grid.source={cfg['grid']['source']}")
    for key in ("noise.mag", "noise.seeing", "instrument.wave_range", "grid.wave_range"):
        a, b = key.split(".")
        lo, hi = cfg[a][b]
        if not hi >= lo:
            raise InputError(f"{where}: {key}: expected lo <= hi, got [{lo}, {hi}]")
    glo, ghi = cfg["grid"]["wave_range"]
    ilo, ihi = cfg["instrument"]["wave_range"]
    if ilo < glo or ihi > ghi:
        raise InputError(f"{where}: instrument.wave_range [{ilo}, {ihi}] must lie inside grid.wave_range [{glo}, {ghi}]")
    edges = cfg["evaluation"]["snr_bins"]
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise InputError(f"{where}: evaluation.snr_bins: expected strictly increasing edges, got {edges}")
    from .estimators import REGISTRY
    for name, variant in cfg["estimators"].items():
        if variant["class"] not in REGISTRY or REGISTRY[variant["class"]].kind not in MODEL_KINDS:
            choices = sorted(k for k, c in REGISTRY.items() if c.kind in MODEL_KINDS)
            raise InputError(f"{where}: estimators.{name}.class: unknown estimator class '{variant['class']}', "
                             f"expected one of {choices}")
        _check_train_source(cfg, name, where)
        _check_hyper(variant["class"], variant.get("hyper") or {}, f"{where}: estimators.{name}.hyper")
        REGISTRY[variant["class"]].check_ranges(variant.get("hyper") or {}, cfg["params"],
                                                f"{where}: estimators.{name}.hyper")
    _check_upstream(cfg, where)
    for name, variant in cfg["estimators"].items():
        REGISTRY[variant["class"]].check_variant(cfg, name, where)
    from .evaluation import param_edges
    param_edges(cfg["evaluation"]["param_bins"], cfg["params"], f"{where}: evaluation.param_bins")
    for name in cfg["figure"]["estimators"]:
        check_configured(cfg, name, "figure.estimators", where)
        _check_predicts_logg(cfg, name, f"{where}: figure.estimators")
    _check_experiments(cfg, where)
    _check_user_paths(cfg, where)
    if len(cfg["ceiling"]["snr"]) != len(cfg["ceiling"]["original"]):
        raise InputError(f"{where}: ceiling.original: expected one value per ceiling.snr entry")
    _check_ceiling_checks(cfg, where)
    return cfg


def check_configured(cfg, name, key, where):
    """InputError ``"<where>: <key>: '<name>' is not configured under 'estimators'"`` when a list of
    variants (``key``: figure.estimators, uncertainty.estimators, ...) names one that does not exist."""
    if name not in cfg["estimators"]:
        raise InputError(f"{where}: {key}: '{name}' is not configured under 'estimators'")


def _check_ceiling_checks(cfg, where):
    """The CRLB checks' log g values must lie inside the prior range, and FD steps include 1.0."""
    mags = cfg["ceiling"]["sweep"]["mags"]
    if any(b <= a for a, b in zip(mags, mags[1:])):
        raise InputError(f"{where}: ceiling.sweep.mags: expected strictly increasing magnitudes, got {mags}")
    v = cfg["ceiling"]["validation"]
    if 1.0 not in [float(f) for f in v["fractions"]]:
        raise InputError(f"{where}: ceiling.validation.fractions: expected 1.0 among them (the original study's "
                         f"step = grid step), got {v['fractions']}")
    prof = v["profile"]
    lo, hi = cfg["params"]["log_g"]
    for x in list(prof["log_g"]) + list(v["ml_logg"]):     # the star's other parameters are clipped into the prior
        if not lo <= x <= hi:
            raise InputError(f"{where}: ceiling.validation.profile.log_g / ml_logg: {x} is outside params.log_g "
                             f"[{lo}, {hi}]")
    if prof["log_g"][1] <= prof["log_g"][0]:
        raise InputError(f"{where}: ceiling.validation.profile.log_g: expected lo < hi, got {prof['log_g']}")


MODEL_KINDS = ("estimator", "transform")   # what a configured variant may be (gates live inside mixtures)
TRAIN_SOURCES = ("file", "simulator")       # estimators.<name>.train_source: what a variant's cells train on


def train_source(cfg, name):
    """What the cells of variant ``name`` train on: ``"file"`` (the training data set, its first ``size``
    rows; the default) or ``"simulator"`` (``size`` spectra simulated from the instrument grid when read,
    other stars than the file's: :class:`~pfslogg.data.simview.SimulatorView`, seed
    ``split_seed(cfg, "simulator")``; sizes above datasets.train.n allowed; ``train_mag`` in place of the
    training split's magnitudes)."""
    return cfg["estimators"][name].get("train_source") or "file"


def simulator_stars(cfg, name):
    """Whose simulated stars a variant with ``train_source: simulator`` draws (a :data:`SEED_TAGS` key for
    :func:`split_seed`): ``"calibration"`` for a class that only calibrates on them (class attribute
    ``simulator_stars``: the conformal rescalings), so that they are never the stars a model trained on,
    else ``"simulator"``, the stars every simulator-trained model shares."""
    from .estimators import REGISTRY

    return REGISTRY[cfg["estimators"][name]["class"]].simulator_stars


def _check_train_source(cfg, name, where):
    src = cfg["estimators"][name].get("train_source", "file")
    if src not in TRAIN_SOURCES:
        raise InputError(f"{where}: estimators.{name}.train_source: expected one of {', '.join(TRAIN_SOURCES)}, "
                         f"got {_show(src)}{_suggest(src, TRAIN_SOURCES) if isinstance(src, str) else ''}")
    mag = cfg["estimators"][name].get("train_mag")
    if mag is not None:
        if src != "simulator":
            raise InputError(f"{where}: estimators.{name}.train_mag: only for train_source simulator (a file's stars "
                             "have the magnitudes they were simulated with)")
        if not (isinstance(mag, (list, tuple)) and len(mag) == 2 and all(isinstance(v, (int, float))
                                                                         and not isinstance(v, bool) for v in mag)
                and mag[0] < mag[1]):
            raise InputError(f"{where}: estimators.{name}.train_mag: expected [lo, hi] magnitudes with lo < hi, "
                             f"got {_show(mag)}")


def _check_predicts_logg(cfg, name, where):
    """A variant scored by R^2 (an experiment's, the headline figure's) must predict log g: a transform
    (a denoiser) is scored by wMAE in denoising.transforms and feeds estimators through their upstream."""
    from .estimators import REGISTRY
    if REGISTRY[cfg["estimators"][name]["class"]].kind != "estimator":
        raise InputError(f"{where}: '{name}' is a transform (class '{cfg['estimators'][name]['class']}'): it does not "
                         "predict log g; list it under denoising.transforms, and name it as the upstream transform "
                         "of a variant of class 'denoised'")


def upstream_specs(cfg, name):
    """``{role: {"variant", "size", "seed", "noise_level"}}`` of a variant's upstream models, as configured
    (``estimators.<name>.upstream``: a variant name or a mapping; absent keys None: the cell's own)."""
    out = {}
    for role, spec in (cfg["estimators"][name].get("upstream") or {}).items():
        spec = {"variant": spec} if isinstance(spec, str) else dict(spec)
        out[role] = {"variant": spec["variant"], "size": spec.get("size"), "seed": spec.get("seed", 0),
                     "noise_level": spec.get("noise_level")}
    return out


def _check_upstream(cfg, where):
    """Every variant's upstream roles are those its class declares (UPSTREAM), each names a configured
    variant of what the role needs (ROLES), and no chain of upstream models comes back to where it started."""
    from .estimators import REGISTRY
    from .estimators.base import ROLES

    variants = cfg["estimators"]
    for name, variant in variants.items():
        cls = REGISTRY[variant["class"]]
        given = upstream_specs(cfg, name)
        for role in given:
            if role not in cls.UPSTREAM:
                raise InputError(f"{where}: estimators.{name}.upstream.{role}: class '{cls.class_id}' builds on no "
                                 f"'{role}' model, expected {sorted(cls.UPSTREAM) or 'no upstream key'}")
        for role in cls.UPSTREAM:
            test, expected = ROLES[role]
            if role not in given:
                raise InputError(f"{where}: estimators.{name}.upstream.{role}: required by class '{cls.class_id}', "
                                 f"expected {expected}")
            up = given[role]["variant"]
            if up not in variants:
                raise InputError(f"{where}: estimators.{name}.upstream.{role}: '{up}' is not configured under "
                                 "'estimators'")
            if not test(REGISTRY[variants[up]["class"]], variants[up].get("hyper") or {}):
                raise InputError(f"{where}: estimators.{name}.upstream.{role}: '{up}' (class "
                                 f"'{variants[up]['class']}') is not {expected}")
    for name in variants:   # cycles: follow the upstream chain of every variant
        stack = [(name, [name])]
        while stack:
            node, path = stack.pop()
            for spec in upstream_specs(cfg, node).values():
                up = spec["variant"]
                if up in path:
                    chain = " -> ".join(path + [up])
                    raise InputError(f"{where}: estimators.{node}.upstream: a cycle ({chain}): a model cannot be "
                                     "trained on its own output")
                stack.append((up, path + [up]))


def _check_hyper(class_id, hyper, where):
    """Hyper-parameter names must be keyword arguments of the class, and a composite's parts must be
    registered classes with valid hyper-parameters (a typo fails before any job)."""
    from .estimators import REGISTRY
    REGISTRY[class_id].check_hyper(hyper, where)


def _check_user_paths(cfg, where):
    """A user-supplied data set may not sit where the workflow writes its own (it would be written
    over the day a simulated split is rebuilt), and it must exist: no rule makes it, and Snakemake
    takes an existing output whose producing job lacks an input for a source file -- after an
    earlier run, a missing data set would silently leave the old results in place."""
    ours = {Path(f"data/datasets/{s}.h5").resolve() for s in ("train", "val", "test")}
    for s in ("train", "val", "test"):
        p = cfg["datasets"][s].get("path")
        if not p:
            continue
        try:
            resolved = Path(p).resolve()
            found = resolved.is_file()
        except (OSError, ValueError):   # a name the file system refuses (a NUL byte, too long)
            resolved, found = None, False
        if resolved in ours:
            raise InputError(f"{where}: datasets.{s}.path: {p} is where the workflow writes the data sets it "
                             "simulates; keep your own files elsewhere (e.g. external/{split}.h5)")
        if not found:
            rel = "" if Path(p).is_absolute() else f" (relative to {Path.cwd()})"
            raise InputError(f"{where}: datasets.{s}.path: {_one_line(p)}: no such data set file{rel}")


def _check_experiments(cfg, where):
    from .experiments import compare_pairs
    from .tracks import TRACKS

    exps = cfg["experiments"]
    for t in sorted(TRACKS.values(), key=lambda t: t.letter):   # the experiments each track reads, then its keys
        for name in t.experiments:
            if name not in exps:
                raise InputError(f"{where}: experiments.{name}: required (Track {t.letter.upper()} reads it)")
    n_train = cfg["datasets"]["train"]["n"]
    external = bool(cfg["datasets"]["train"].get("path"))
    for name, exp in exps.items():
        for e in exp["estimators"]:
            check_configured(cfg, e, f"experiments.{name}.estimators", where)
            _check_predicts_logg(cfg, e, f"{where}: experiments.{name}.estimators")
        ref = exp.get("reference")
        if ref is not None and ref not in exp["estimators"]:
            raise InputError(f"{where}: experiments.{name}.reference: '{ref}' is not one of its estimators")
        for key in ("estimators", "noise_levels", "sizes"):
            if len(set(exp[key])) != len(exp[key]):
                raise InputError(f"{where}: experiments.{name}.{key}: expected distinct values, got {exp[key]}")
        if not external:
            _check_sizes(cfg, name, exp, n_train, where)
        for variant, ref in compare_pairs(exp).items():
            for e in (variant, ref):
                if e not in exp["estimators"]:
                    raise InputError(f"{where}: experiments.{name}.compare: '{e}' is not one of the experiment's "
                                     "estimators")
    for t in sorted(TRACKS.values(), key=lambda t: t.letter):
        if t.check:
            t.check(cfg, where)


def _check_sizes(cfg, name, exp, n_train, where):
    """Training sizes above datasets.train.n are refused for the cells that read the training file: those
    of the experiment's variants that train on it, and the upstream cells (of such variants) that train
    at the size of the cell they serve. A variant with ``train_source: simulator`` has no such limit."""
    big = [n for n in exp["sizes"] if n > n_train]
    if not big:
        return
    sim = [e for e in exp["estimators"] if train_source(cfg, e) == "simulator"]
    on_file = [e for e in exp["estimators"] if e not in sim]
    if on_file:
        extra = f" (its variants that train on the file: {', '.join(on_file)})" if sim else ""
        raise InputError(f"{where}: experiments.{name}.sizes: {big} exceed datasets.train.n = {n_train}{extra}")
    todo, seen = list(sim), set()
    while todo:   # upstream cells at the downstream cell's size
        e = todo.pop()
        if e in seen:
            continue
        seen.add(e)
        for role, spec in upstream_specs(cfg, e).items():
            if spec["size"] is not None or spec["variant"] not in cfg["estimators"]:
                continue
            if train_source(cfg, spec["variant"]) == "simulator":
                todo.append(spec["variant"])
            else:
                raise InputError(f"{where}: experiments.{name}.sizes: {big} exceed datasets.train.n = {n_train}: "
                                 f"the upstream {role} '{spec['variant']}' of '{e}' trains on the file at the "
                                 f"size of its cell (give estimators.{e}.upstream.{role} a size)")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, but a key given twice in one mapping is an error: plain YAML keeps the
    last one and silently drops the first block (a second ``experiments:`` in a config file)."""

    def construct_mapping(self, node, deep=False):
        seen = {}   # the keys written in this mapping; those a merge (<<: *anchor) brings may be overridden
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' given twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def check_config_files(paths):
    """Read each config file as :func:`load_config` does (an :class:`InputError` naming the file for
    invalid YAML or a key given twice); the Snakefile runs it on Snakemake's own --configfile list."""
    for p in paths:
        _read_yaml(p)


def _read_yaml(path):
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: config file not found")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read the config file ({e.strerror or e})") from None
    try:
        cfg = yaml.load(data, Loader=_UniqueKeyLoader)  # bytes: PyYAML checks the encoding (ReaderError)
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    except RecursionError:
        raise InputError(f"{path}: not valid YAML (nested too deeply)") from None
    if not isinstance(cfg, dict):
        raise InputError(f"{path}: expected a mapping of config keys at the top level")
    return cfg


def merge_configs(base, over):
    """``over`` merged into ``base`` as Snakemake merges --configfile files: mappings key by key,
    everything else (lists included) replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge_configs(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path, *more, schema=SCHEMA):
    """Read, validate (filling defaults) and check a YAML config file -- or several, merged in
    order as ``snakemake --configfile`` merges them (``load_config('config/config.yaml',
    'config/paper.yaml')`` is the full study as the workflow sees it)."""
    paths = [Path(path), *map(Path, more)]
    cfg = {}
    for p in paths:
        cfg = merge_configs(cfg, _read_yaml(p))
    where = paths[-1] if len(paths) == 1 else " + ".join(map(str, paths))
    try:
        validate_config(cfg, where, schema)
    except RecursionError:
        raise InputError(f"{where}: config nested too deeply (or a recursive YAML alias)") from None
    return check_config(cfg, where)


SEED_TAGS = {"train": 1, "val": 2, "test": 3, "simulator": 4, "coverage": 5, "calibration": 6}


def split_seed(cfg, split):
    """Seed of a data-set split: derived from the master seed, distinct per split. ``"simulator"``: the
    seed of the stars that variants with ``train_source: simulator`` train on (no file: drawn when
    read, :class:`~pfslogg.data.simview.SimulatorView`), distinct from every split's, so that they are
    not the training file's stars; ``"coverage"``: those of the large set simulated at the test's magnitudes on
    which rule check_coverage measures the coverage of every shipped interval; ``"calibration"``: those that
    the simulator-calibrated conformal variants set their factors on (:func:`simulator_stars`)."""
    return int(cfg["seed"]) * 10 + SEED_TAGS[split]


def noise_seed(cfg, split):
    """Seed of the fixed noise of the val/test split."""
    return split_seed(cfg, split) * 7 + 5
