"""
Sample from a trained model. max_new_tokens may run far past the training length: that is the point
of SWAN (its S layers cache only `window` keys, its N layers see everything).

    python sample.py --out_dir=out --start="ROMEO." --max_new_tokens=2000
    python sample.py --out_dir=out --start=FILE:prompt.txt --scale_base=256 --num_samples=1
    python sample.py --out_dir=out --start=FILE:chapter_and_question.txt --temperature=0 --echo=false
"""

import sys
from dataclasses import dataclass

import torch

from data.prepare import DataError, load_tokenizer
from checkpoint import load_model
from common import autocast_for, parse_settings, pick_device


@dataclass
class SampleConfig:
    out_dir: str = "out"  # a run directory (or a ckpt.pt)
    start: str = ""  # prompt text, or FILE:path; empty = the start of a new document
    num_samples: int = 3
    max_new_tokens: int = 500
    temperature: float = 0.8  # 0 = greedy
    top_k: int = 200  # 0 = no top-k cut
    scale_base: float | None = None  # dynamic attention scaling for N layers (None = off)
    scale_from_L: bool = False  # the scaling begins at the training length L (the positions trained on left as they were)
    echo: bool = True  # print the prompt before each continuation (false: the continuation alone)
    data_dir: str = ""  # where the tokenizer is; default: the checkpoint's dataset
    device: str = "auto"
    seed: int = 1337


def main(argv):
    cfg = SampleConfig(**parse_settings(argv, SampleConfig, doc=__doc__, presets=False))
    if cfg.num_samples < 1 or cfg.max_new_tokens < 1 or cfg.temperature < 0:
        raise SystemExit("error: num_samples and max_new_tokens must be >= 1 and temperature >= 0")
    if cfg.top_k < 0:
        raise SystemExit(f"error: --top_k={cfg.top_k} must be >= 0 (0 = no top-k cut)")
    if cfg.scale_base is not None and not cfg.scale_base > 1:  # checked here: it is the setting, not the checkpoint
        raise SystemExit(f"error: --scale_base={cfg.scale_base} must be a number > 1 (log(a) must be positive) or off")
    if cfg.scale_from_L and cfg.scale_base is None:
        raise SystemExit("error: --scale_from_L says where scaling begins; give the base too (--scale_base=A)")
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model, ckpt = load_model(cfg.out_dir, device, scale_base=cfg.scale_base)
    if cfg.scale_from_L:
        model.set_scale_base(cfg.scale_base, start=model.config.block_size)
    model.eval()
    if cfg.scale_base is not None and "N" not in model.config.layer_pattern:
        print(f"note: --scale_base scales N layers only; this model ({model.config.layer_pattern}) has none, so it "
              f"changes nothing", file=sys.stderr)
    data_dir = cfg.data_dir or ckpt["data"]["data_dir"]
    try:
        enc = load_tokenizer(data_dir)
    except DataError as e:
        raise SystemExit(f"error: {e} (point --data_dir at the dataset the model was trained on)")
    if enc.n_vocab > model.config.vocab_size:
        raise SystemExit(f"error: the tokenizer in {data_dir} has {enc.n_vocab} tokens but the model only "
                         f"{model.config.vocab_size}: it is not the tokenizer this checkpoint was trained with")

    start = cfg.start
    if start.startswith("FILE:"):
        try:
            start = open(start[5:], encoding="utf-8").read()
        except OSError as e:
            raise SystemExit(f"error: cannot read the prompt file {start[5:]}: {e.strerror}")
    ids = [enc.eot_token] + enc.encode_ordinary(start)  # a prompt begins a fresh document
    idx = torch.tensor([ids] * cfg.num_samples, device=device)
    with autocast_for(device):
        out = model.generate(idx, cfg.max_new_tokens, temperature=cfg.temperature, top_k=cfg.top_k or None)
    if not cfg.echo:
        print(f"(a prompt of {len(ids) - 1:,} tokens; the continuation:)")
    for row in out.tolist():
        print(enc.decode(row[1:] if cfg.echo else row[len(ids):]))
        print("-" * 60)


if __name__ == "__main__":
    main(sys.argv[1:])
