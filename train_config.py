"""
The settings of a training run (train.py): TrainConfig, whose fields with model.GPTConfig's are
every setting, the checks that refuse in one line a setting that cannot make sense, and what a
resumed run keeps (everything but CHANGEABLE_ON_RESUME, and its global batch, however it is split
over processes).
"""

import os
from dataclasses import asdict, dataclass, fields

from checkpoint import load_checkpoint
from common import check_positive, note, parse_settings
from data.tasks import LIST_LAST, ORDERS, TASKS
from model import ARCHS, GPTConfig

DEFAULT_DATA = "data/shakespeare"  # prepared on first use; any other data_dir must exist


@dataclass
class TrainConfig:
    data_dir: str = DEFAULT_DATA
    out_dir: str = "out"
    arch: str = "swan"  # gpt | nope | swa | swan | swat: sets layer_pattern, attn, alibi
    init_from: str = "scratch"  # scratch | resume | PATH of another run (its dir or ckpt.pt)
    batch_size: int = 16  # sequences per micro-batch of each process (global batch: x grad_accum x processes)
    grad_accum: int = 1  # micro-batches per optimizer step
    max_iters: int = 400  # 0 with --init_from=RUN: the conversion alone, saved untrained
    warmup_iters: int = 40
    learning_rate: float = 3e-3
    min_lr_ratio: float = 0.1  # cosine decay ends at learning_rate * min_lr_ratio
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 = off
    eval_interval: int = 100  # also writes the checkpoint
    eval_iters: int = 4
    log_interval: int = 10
    device: str = "auto"  # auto | cpu | cuda
    compile: bool = False
    seed: int = 1337
    sample_tokens: int = 256  # a sample printed at the end of training (0 = none)
    retrieval: float = 0.0  # fraction of training sequences replaced by needle tasks (data/tasks.py)
    retrieval_keys: int = 4  # the most needles of a multikey training example
    retrieval_values: int = 0  # the most values of a multivalue training example; 0 = retrieval_keys
    retrieval_tasks: str = "passkey,multikey,multivalue"  # drawn uniformly: a task named twice comes twice as often
    retrieval_start: float = 0.0  # the mix begins at this fraction of max_iters (0 = from the start)
    retrieval_answer_weight: float = 1.0  # each answer token of a needle example counts this many times in the training loss
    retrieval_list: str = "and"  # multivalue's answer: "and" (d1, d2 and d3: needs the count to place "and") | "commas" (d1, d2, d3)
    retrieval_order: str = "needles"  # multivalue's values in the answer: in the needles' order | "random" (a new order per example)
    overwrite: bool = False  # a new run may replace the run already in out_dir
    nope_layers: str = "measured"  # a conversion to N and S layers: N where the source loses least without RoPE (conversion.py) | "measured-spread" (as many per group of the pattern's length) | "pattern"
    source_optimizer: bool = False  # a conversion continues the source run's AdamW moments instead of zeros
    distill_from: str = ""  # a run whose next-token distributions the model also learns (KL to its logits, on the fly, within its training length: see distill_windows)
    distill_weight: float = 0.5  # with distill_from: loss = (1 - w) cross-entropy + w KL(teacher || model)
    distill_windows: bool = False  # trained longer than the teacher: it reads windows of its length, half a window apart, and teaches every position (not the first L only)
    converted_first: float = 0.0  # a conversion first trains only its N layers' blocks, the rest frozen, for this fraction of max_iters
    rope_fade: float = 0.0  # a conversion's new N layers keep RoPE, its angles shrinking linearly to none over this fraction of max_iters (0: dropped at once)
    stop_at: int = 0  # save and stop at this iteration, to be resumed later (the schedule stays max_iters'); 0 = run to the end


# what a resumed run may change: how long it runs, how often it reports, where it runs. Anything
# else given differently from the checkpoint is refused: it would be another run under the same name.
CHANGEABLE_ON_RESUME = ("max_iters", "eval_interval", "eval_iters", "log_interval", "device", "compile",
                        "sample_tokens", "stop_at")


def build_configs(argv, doc=None):
    """(TrainConfig, model settings): those given, or for --init_from=resume the run's own; doc
    heads --help."""
    settings = parse_settings(argv, TrainConfig, GPTConfig, doc=doc)
    names = {f.name for f in fields(TrainConfig)}
    given = {k: v for k, v in settings.items() if k in names}
    model_settings = {k: v for k, v in settings.items() if k not in names}
    if given.get("init_from") == "resume":
        given, model_settings = resumed_settings(given, model_settings)
    cfg = TrainConfig(**given)
    if cfg.distill_from:
        cfg.distill_from = os.path.abspath(cfg.distill_from)  # a resumed run finds it from anywhere
    check_settings(cfg, model_settings)
    return cfg, model_settings


def retrieval_values(cfg):
    """The most values of a multivalue training example: --retrieval_values, or --retrieval_keys if 0."""
    return cfg.retrieval_values or cfg.retrieval_keys


def check_settings(cfg, model_settings):
    """One line for a setting that cannot make sense, before anything is loaded."""
    check_positive(cfg, "batch_size", "grad_accum", "eval_interval", "eval_iters", "log_interval", "retrieval_keys")
    if cfg.max_iters < (0 if cfg.init_from not in ("scratch", "resume") else 1):
        raise SystemExit(f"error: --max_iters must be >= 1 (0 only converts a run: --init_from=RUN), got {cfg.max_iters}")
    for key, ok, want in [
            ("learning_rate", cfg.learning_rate > 0, "> 0"), ("warmup_iters", cfg.warmup_iters >= 0, ">= 0"),
            ("min_lr_ratio", 0 <= cfg.min_lr_ratio <= 1, "in [0, 1]"), ("weight_decay", cfg.weight_decay >= 0, ">= 0"),
            ("beta1", 0 <= cfg.beta1 < 1, "in [0, 1)"), ("beta2", 0 <= cfg.beta2 < 1, "in [0, 1)"),
            ("grad_clip", cfg.grad_clip >= 0, ">= 0 (0 = off)"), ("sample_tokens", cfg.sample_tokens >= 0, ">= 0"),
            ("seed", cfg.seed >= 0, ">= 0"), ("retrieval", 0 <= cfg.retrieval < 1, "a fraction in [0, 1)"),
            ("retrieval_start", 0 <= cfg.retrieval_start < 1, "a fraction of max_iters in [0, 1)"),
            ("retrieval_answer_weight", cfg.retrieval_answer_weight > 0, "> 0"),
            ("retrieval_values", cfg.retrieval_values >= 0, ">= 0 (0 = retrieval_keys)"),
            ("stop_at", cfg.stop_at == 0 or 0 < cfg.stop_at < cfg.max_iters, f"an iteration below max_iters={cfg.max_iters} (0 = none)"),
            ("distill_weight", 0 < cfg.distill_weight <= 1, "a weight in (0, 1]"),
            ("rope_fade", 0 <= cfg.rope_fade < 1, "a fraction of max_iters in [0, 1)"),
            ("converted_first", 0 <= cfg.converted_first < 1, "a fraction of max_iters in [0, 1)")]:
        if not ok:
            raise SystemExit(f"error: --{key}={getattr(cfg, key)} must be {want}")
    if cfg.nope_layers not in ("pattern", "measured", "measured-spread"):
        raise SystemExit(f"error: --nope_layers must be pattern, measured or measured-spread, got {cfg.nope_layers!r}")
    if cfg.distill_weight != TrainConfig.distill_weight and not cfg.distill_from:
        raise SystemExit(f"error: --distill_weight={cfg.distill_weight} weighs a teacher; give it with --distill_from=RUN")
    if cfg.distill_windows and not cfg.distill_from:
        raise SystemExit("error: --distill_windows sets how a teacher reads long sequences; give it with --distill_from=RUN")
    for key, what in [("retrieval_list", "sets the form of the needle tasks' multivalue answers"),
                      ("retrieval_values", "caps the needle tasks' multivalue values"),
                      ("retrieval_order", "orders the needle tasks' multivalue answers"),
                      ("retrieval_answer_weight", "weighs the needle tasks' answers")]:
        if getattr(cfg, key) != getattr(TrainConfig, key) and cfg.retrieval == 0:
            raise SystemExit(f"error: --{key}={getattr(cfg, key)} {what}; give a mix with --retrieval=F")
    for key, what in [("source_optimizer", "is for a conversion"),
                      ("converted_first", "trains a conversion's N layers alone first"),
                      ("rope_fade", "fades out the RoPE a conversion's N layers had")]:
        if getattr(cfg, key) and cfg.init_from == "scratch":
            raise SystemExit(f"error: --{key} {what} (--init_from=RUN); this run starts from scratch")
    for key, choices in [("retrieval_list", LIST_LAST), ("retrieval_order", ORDERS)]:
        if getattr(cfg, key) not in choices:
            raise SystemExit(f"error: --{key} must be {' or '.join(choices)}, got {getattr(cfg, key)!r}")
    unknown = set(cfg.retrieval_tasks.split(",")) - set(TASKS)
    if unknown:
        raise SystemExit(f"error: --retrieval_tasks: unknown task {sorted(unknown)[0]!r}; the tasks are {', '.join(TASKS)}")
    if cfg.arch not in ARCHS:
        raise SystemExit(f"error: --arch must be one of {', '.join(ARCHS)}, got {cfg.arch!r}")
    rope_base = model_settings.get("rope_base", GPTConfig.rope_base)
    if not rope_base > 1:  # 0 would make every rotation infinite, and the loss NaN at the first step
        raise SystemExit(f"error: --rope_base={rope_base} must be > 1 (RoPE's wavelengths are 2 pi rope_base^(2i/d))")


def resumed_settings(given, model_given):
    """(train settings, model settings) of the run in out_dir, from its checkpoint. A given setting
    that differs is applied with a note if it is in CHANGEABLE_ON_RESUME, else refused."""
    out_dir = given.get("out_dir", TrainConfig.out_dir)
    ckpt, config = load_checkpoint(out_dir)
    if "optimizer" not in ckpt:
        raise SystemExit(f"error: {out_dir} holds a model without optimizer state (imported, not trained here): it "
                         f"cannot be resumed; start a run from it with --init_from={out_dir}")
    names = {f.name for f in fields(TrainConfig)}
    saved = {**asdict(TrainConfig()), **{k: v for k, v in ckpt.get("train_config", {}).items() if k in names}}
    saved.update(out_dir=out_dir, init_from="resume", overwrite=False, data_dir=ckpt["data"]["data_dir"],  # absolute
                 stop_at=0)  # a stop asked of the first part of a run is not asked again
    saved_model, notes = asdict(config), []
    for key, value in {**given, **model_given}.items():
        was = saved_model[key] if key in model_given else saved[key]
        same = os.path.abspath(value) == os.path.abspath(was) if key == "data_dir" else value == was
        if same or key in ("out_dir", "init_from", "overwrite", "batch_size", "grad_accum", "stop_at"):
            continue
        if key not in CHANGEABLE_ON_RESUME:
            raise SystemExit(f"error: --{key}={value} differs from the run in {out_dir} ({key}={was}); a resumed run "
                             f"keeps its settings except {', '.join(CHANGEABLE_ON_RESUME)}")
        notes.append(f"resuming with --{key}={value} (the run had {was})")
    if given.get("max_iters", saved["max_iters"]) < ckpt["iter"]:
        raise SystemExit(f"error: --max_iters={given['max_iters']} is below the iteration the run in {out_dir} "
                         f"is at ({ckpt['iter']})")
    if 0 < given.get("stop_at", 0) <= ckpt["iter"]:
        raise SystemExit(f"error: --stop_at={given['stop_at']} is not after the iteration the run in {out_dir} "
                         f"is at ({ckpt['iter']})")
    settings = {**saved, **{k: v for k, v in given.items() if k in CHANGEABLE_ON_RESUME}}
    settings.update(split_global_batch(given, saved, ckpt, out_dir, notes))
    for text in notes:  # once nothing is refused
        note(text)
    return settings, saved_model


def split_global_batch(given, saved, ckpt, out_dir, notes):
    """{batch_size, grad_accum} that make the run's global batch with this many processes: a run
    may resume on another number of processes and still see the same batches."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    global_batch = ckpt["data"].get("global_batch", saved["batch_size"] * saved["grad_accum"])  # older: one process
    grad_accum = given.get("grad_accum", saved["grad_accum"])
    batch_size = given.get("batch_size", global_batch // (grad_accum * world))
    if batch_size * grad_accum * world != global_batch:
        raise SystemExit(f"error: the run in {out_dir} has a global batch of {global_batch} sequences, not batch_size="
                         f"{batch_size} x grad_accum={grad_accum} x {world} process(es); give a batch_size and "
                         f"grad_accum that make it")
    if (batch_size, grad_accum) != (saved["batch_size"], saved["grad_accum"]):
        was = f"{saved['batch_size']} x {saved['grad_accum']} x {global_batch // (saved['batch_size'] * saved['grad_accum'])}"
        notes.append(f"its global batch of {global_batch} sequences is now batch_size={batch_size} x grad_accum={grad_accum} x "
                     f"{world} process(es) (it was {was})")
    return dict(batch_size=batch_size, grad_accum=grad_accum)


def check_out_dir(cfg):
    """A new run never replaces another one silently."""
    ckpt_path = os.path.join(cfg.out_dir, "ckpt.pt")
    if cfg.init_from != "resume" and os.path.exists(ckpt_path) and not cfg.overwrite:
        raise SystemExit(f"error: {cfg.out_dir} already holds a run ({ckpt_path}); continue it with --init_from=resume, "
                         f"choose another --out_dir, or replace it with --overwrite")
