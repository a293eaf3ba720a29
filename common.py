"""
What every script shares: settings from a dataclass, the device, autocast and progress bars.

Settings. A script's settings are the fields of a dataclass. Each is given as `--key=value` on
the command line (a bare `--flag` switches a yes/no setting on), or as a line `key = value` of a
preset file named on the command line (read as literals, never executed). `--help` lists every
field with its default and the comment beside it in the dataclass, after the script's docstring.

    cfg = TrainConfig(**parse_settings(argv, TrainConfig, doc=__doc__))
"""

import ast
import csv
import inspect
import os
import re
import sys
import time
import types
from contextlib import nullcontext
from dataclasses import MISSING, fields

import torch
from tqdm import tqdm


# -----------------------------------------------------------------------------
# settings: dataclass fields, overridden by a preset file and by --key=value


def parse_value(key, value, typ):
    """Convert value (a string from the command line, or a literal from a preset) to typ."""
    optional = isinstance(typ, types.UnionType) and type(None) in typ.__args__
    if optional:
        if value is None or str(value).lower() in ("none", "off"):
            return None
        typ = next(t for t in typ.__args__ if t is not type(None))
    if typ is bool:
        if isinstance(value, bool) or str(value).lower() in ("true", "false"):
            return value if isinstance(value, bool) else str(value).lower() == "true"
    elif typ is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    elif typ is int and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return int(value)
        except ValueError:
            pass
    elif typ is str and isinstance(value, str):
        return value
    name = typ.__name__ + (" or None" if optional else "")
    raise SystemExit(f"error: --{key}={value!r} is not a valid {name}")


def read_preset(path):
    """A preset is `key = literal` lines; anything else is refused rather than executed."""
    try:
        tree = ast.parse(open(path).read(), filename=path)
    except (OSError, SyntaxError) as e:
        raise SystemExit(f"error: cannot read preset {path}: {e}")
    settings = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise SystemExit(f"error: {path}:{node.lineno}: a preset holds only `key = value` lines")
        try:
            settings[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise SystemExit(f"error: {path}:{node.lineno}: the value must be a literal (number, string, True/False/None)")
    return settings


def field_comments(cls):
    """{field: the comment on its line} of a dataclass, read from its source (help text)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return dict(re.findall(r"^\s+(\w+):[^#\n]*#\s*(.*)$", source, flags=re.M))


def help_text(doc, classes):
    lines = [(doc or "").strip(), "", "settings (--key=value; a bare --flag sets a yes/no setting):"]
    for cls in classes:
        comments = field_comments(cls)
        for f in fields(cls):
            default = f.default if f.default is not MISSING else "(required)"
            comment = f"  # {comments[f.name]}" if f.name in comments else ""
            lines.append(f"  --{f.name}={default}{comment}")
    return "\n".join(lines)


def note(text):  # one line; under torchrun rank 0 alone says it
    if os.environ.get("RANK", "0") == "0":
        print(f"note: {text}")


def parse_settings(argv, *classes, doc=None, presets=True):
    """{key: typed value} from preset files and --key=value arguments, checked against the fields
    of classes. -h/--help prints the doc and every field, then exits."""
    if {"-h", "--help"} & set(argv):
        print(help_text(doc, classes))
        raise SystemExit(0)
    known = {f.name: f.type for cls in classes for f in fields(cls)}
    raw = {}
    for arg in argv:
        if arg.startswith("--"):
            key, eq, value = arg[2:].partition("=")
            if not eq and known.get(key) is bool:
                value = "true"  # a bare --flag switches a yes/no setting on
            elif not eq:
                raise SystemExit(f"error: {arg}: write settings as --key=value")
            raw[key] = value
        elif presets:
            raw.update(read_preset(arg))
        else:
            raise SystemExit(f"error: {arg!r}: this script takes only --key=value settings")
    for key in raw:
        if key not in known:
            raise SystemExit(f"error: unknown setting {key!r}; valid settings: {', '.join(known)} (see --help)")
    return {key: parse_value(key, value, known[key]) for key, value in raw.items()}


def parse_list(key, text, item=int, ok=lambda v: v >= 1, want="integers >= 1"):
    """A comma-separated setting as a list: item() of each entry, each passing ok (None, which
    item may return for `off`, always passes); duplicates dropped, order kept."""
    try:
        values = [item(v.strip()) for v in text.split(",")]
    except ValueError:
        values = None
    if not values or any(v is not None and not ok(v) for v in values):
        raise SystemExit(f"error: --{key}={text!r} is not a comma-separated list of {want}")
    return list(dict.fromkeys(values))


def check_positive(cfg, *keys):
    for key in keys:
        if getattr(cfg, key) < 1:
            raise SystemExit(f"error: --{key} must be >= 1, got {getattr(cfg, key)}")


# -----------------------------------------------------------------------------
# device, precision, progress


def pick_device(name):
    """'auto' | 'cpu' | 'cuda' (the --device setting of every script) to a device, or SystemExit.
    On a GPU it also lets float32 matmuls use TF32 (the bf16-autocast models barely have any)."""
    if name not in ("auto", "cpu", "cuda"):
        raise SystemExit(f"error: --device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device=cuda but no CUDA GPU is available")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return device


def autocast_for(device):
    # bf16 matmuls on the GPU (weights stay fp32); plain fp32 on the CPU
    return torch.autocast("cuda", dtype=torch.bfloat16) if str(device).startswith("cuda") else nullcontext()


LOG_EVERY_S = 30  # seconds between progress lines when stderr is a file or a pipe


def progress(**kwargs):
    """A tqdm bar on a terminal; into a log file or a pipe, plain lines instead (LogLines)."""
    if sys.stderr.isatty():
        return tqdm(dynamic_ncols=True, mininterval=1, **kwargs)
    return LogLines(**kwargs)


class LogLines:
    """What progress() gives when stderr is not a terminal: the bar's text as a whole line every
    LOG_EVERY_S seconds and once at the end. A redrawn bar would fill a log with carriage returns."""

    def __init__(self, iterable=None, total=None, initial=0, desc=None, unit="it", unit_scale=False, disable=False):
        self.iterable, self.n, self.initial, self.desc, self.disable = iterable, initial, initial, desc, disable
        self.total = len(iterable) if total is None and hasattr(iterable, "__len__") else total
        self.unit, self.unit_scale, self.postfix, self.printed = unit, unit_scale, None, None
        self.start = self.last_line = time.time()

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n=1):
        self.n += n
        if time.time() - self.last_line >= LOG_EVERY_S:
            self.print_line()

    def set_description(self, desc=None, refresh=True):
        self.desc = desc

    def set_postfix(self, refresh=True, **values):
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self):
        if self.printed != self.n:  # the last count, unless the last line had it
            self.print_line()
        self.disable = True  # once

    def print_line(self):
        if self.disable:
            return
        self.last_line, self.printed = time.time(), self.n
        elapsed = self.last_line - self.start
        print(tqdm.format_meter(self.n, self.total, elapsed, prefix=self.desc or "", ascii=True, unit=self.unit,
                                unit_scale=self.unit_scale, postfix=self.postfix, initial=self.initial),
              file=sys.stderr, flush=True)


def write_csv(rows, path, columns):
    """rows (dicts) as a CSV with these columns; a missing value is an empty cell."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def check_out(prefix):
    """Create the folder of an output prefix (PREFIX.csv, PREFIX.png) now, before the work rather
    than after it; one line if it cannot be created or written."""
    folder = os.path.dirname(os.path.abspath(prefix))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise SystemExit(f"error: --out={prefix}: cannot create {folder}: {e.strerror}")
    if not os.access(folder, os.W_OK):
        raise SystemExit(f"error: --out={prefix}: cannot write to {folder}")


def run_color(i, n):
    """The colour of the i-th of n runs in a figure: matplotlib's ten default colours, or, with
    more than ten runs (where those would repeat), the dark then the light shades of tab20."""
    import matplotlib
    if n <= 10:
        return f"C{i}"
    return matplotlib.colormaps["tab20"]((2 * i + (i // 10) % 2) % 20)
