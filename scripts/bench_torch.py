#!/usr/bin/env python3
"""PyTorch reference timing for `ainrnn bench train` (CPU only).

The same models as ainrnn's IndRNN and LSTM baselines, on the same shapes and SYNTHETIC batches
of the same kind (Zipf song popularity, distinct songs per user, ceil(log-normal) play counts):

  input   = [song embedding (--emb) | log(1 + plays) - its mean over the user's history]
                                                                    per listen, [B, L, emb + 1]
  IndRNN  = per layer: pre = x W + b (one matmul for all steps), h_t = relu(pre_t + u * h_{t-1}),
            u uniform in [0, 2^(1/L)) and clamped there after each step
  LSTM    = per layer: torch.nn.LSTM (gates i, f, g, o), one layer per module
  dropout = --dropout after every layer, one mask per sequence shared over time
  user    = last step's state -> Linear(H, emb)
  loss    = softmax cross-entropy over the whole catalogue: logits = u E^T + b with E the input
            embedding (tied, as in ainrnn), every target of a user weighted 1 / (targets x batch)
  then backward, global-norm clipping at 5, AdamW (lr 5e-4, betas 0.9/0.999, eps 1e-8, weight
  decay 1e-5 on weights and embeddings, 0 on biases and u).

Prints one JSON object: torch version, threads, seconds per step per model and the seconds of the
catalogue softmax alone (logits + log-softmax + loss, forward and backward, for a fixed u). Every
model is warmed up for at least 6 steps (torch's oneDNN LSTM is several times slower on its first
~5 training calls); the LSTM is timed with oneDNN on and off and the faster is reported.
"""

import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

WARMUP_MIN = 6


def xavier_(w):
    # ainrnn's MultiLinear init: uniform(+-sqrt(6 / (fan_in + fan_out))).
    fan_out, fan_in = w.shape
    a = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        w.uniform_(-a, a)


class IndRNN(nn.Module):
    def __init__(self, din, h, u_max):
        super().__init__()
        self.lin = nn.Linear(din, h)
        xavier_(self.lin.weight)
        nn.init.zeros_(self.lin.bias)
        self.u = nn.Parameter(torch.rand(h) * u_max)
        self.u_max = u_max

    def forward(self, x):
        pre = self.lin(x)
        h = torch.zeros(x.shape[0], pre.shape[2])
        out = []
        for t in range(x.shape[1]):
            h = torch.relu(pre[:, t] + self.u * h)
            out.append(h)
        return torch.stack(out, 1)


class Lstm(nn.Module):
    def __init__(self, din, h):
        super().__init__()
        self.rnn = nn.LSTM(din, h, batch_first=True)
        with torch.no_grad():
            self.rnn.bias_ih_l0.zero_()
            self.rnn.bias_hh_l0.zero_()
            self.rnn.bias_ih_l0[h : 2 * h] = 1.0  # forget gate starts at 1, as in ainrnn

    def forward(self, x):
        return self.rnn(x)[0]


class Model(nn.Module):
    def __init__(self, kind, songs, emb, hidden, layers, history, dropout):
        super().__init__()
        self.emb = nn.Embedding(songs, emb)
        with torch.no_grad():
            self.emb.weight.uniform_(-0.05, 0.05)
        u_max = 2.0 ** (1.0 / history)
        layers_ = []
        for i in range(layers):
            din = emb + 1 if i == 0 else hidden
            layers_.append(IndRNN(din, hidden, u_max) if kind == "indrnn" else Lstm(din, hidden))
        self.layers = nn.ModuleList(layers_)
        self.user = nn.Linear(hidden, emb)
        xavier_(self.user.weight)
        nn.init.zeros_(self.user.bias)
        self.qb = nn.Parameter(torch.zeros(songs))
        self.keep = 1.0 - dropout

    def user_vectors(self, songs, logc):
        x = torch.cat([self.emb(songs), logc.unsqueeze(-1)], -1)
        for layer in self.layers:
            x = layer(x)
            if self.keep < 1.0:
                m = (torch.rand(x.shape[0], 1, x.shape[2]) < self.keep).float() / self.keep
                x = x * m
        return self.user(x[:, -1])

    def loss(self, u, tgt, w):
        logits = u @ self.emb.weight.t() + self.qb
        logp = F.log_softmax(logits, dim=1)
        return -(logp.gather(1, tgt) * w).sum()


def batches(n, a, gen):
    """SYNTHETIC: Zipf popularity over a random permutation of ranks, distinct songs per user."""
    ranks = torch.randperm(a.songs, generator=gen)
    weight = 1.0 / (ranks.float() + 1.0)
    out = []
    k = min(a.history + a.targets, a.songs)
    for _ in range(n):
        pick = torch.multinomial(weight.expand(a.batch, -1), k, replacement=False, generator=gen)
        hist, tgt = pick[:, : a.history], pick[:, a.history :]
        z = torch.randn(a.batch, a.history, generator=gen)
        plays = torch.ceil(torch.exp(-0.3 + 1.5 * z)).clamp(1, 1e6)
        w = torch.full(tgt.shape, 1.0 / (tgt.shape[1] * a.batch))
        logc = torch.log1p(plays)
        out.append((hist, logc - logc.mean(1, keepdim=True), tgt, w))
    return out


def bench_model(kind, a, data):
    torch.manual_seed(a.seed)
    m = Model(kind, a.songs, a.emb, a.hidden, a.layers, a.history, a.dropout)
    decay, no_decay = [], []
    for name, p in m.named_parameters():
        (no_decay if name.endswith("bias") or name.endswith(".u") or name == "qb" else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 1e-5}, {"params": no_decay, "weight_decay": 0.0}],
        lr=5e-4,
        betas=(0.9, 0.999),
        eps=1e-8,
    )
    ind = [l for l in m.layers if isinstance(l, IndRNN)]

    def step(b):
        songs, logc, tgt, w = b
        opt.zero_grad(set_to_none=True)
        loss = m.loss(m.user_vectors(songs, logc), tgt, w)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 5.0)
        opt.step()
        with torch.no_grad():
            for l in ind:
                l.u.clamp_(-l.u_max, l.u_max)
        return loss

    # torch's oneDNN LSTM runs its first ~5 training calls several times slower: warm up longer.
    for i in range(max(a.warmup, WARMUP_MIN)):
        step(data[i % len(data)])
    total, times = 0.0, []
    for i in range(a.steps):
        t0 = time.perf_counter()
        total += step(data[(a.warmup + i) % len(data)]).detach().item()
        times.append(time.perf_counter() - t0)
    times.sort()

    # The catalogue softmax alone: logits, log-softmax and loss for a fixed user batch, forward
    # and backward (what ainrnn's Scorer::loss_backward does).
    u = torch.randn(a.batch, a.emb, requires_grad=True)
    _, _, tgt, w = data[0]
    t0 = time.perf_counter()
    for _ in range(a.steps):
        m.zero_grad(set_to_none=True)
        m.loss(u, tgt, w).backward()
    soft = (time.perf_counter() - t0) / a.steps
    return {
        "model": kind,
        "seconds_per_step": sum(times) / len(times),
        # OpenMP threads stall badly when other processes share the cores: the median step is
        # the robust number on a busy machine.
        "median_seconds_per_step": times[len(times) // 2],
        "softmax_seconds_per_step": soft,
        "mean_loss": total / a.steps,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--songs", type=int, default=10000)
    # Defaults: ainrnn's trainer's (`bench train` passes every size).
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--history", type=int, default=25)
    ap.add_argument("--targets", type=int, default=25)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--emb", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--models", default="indrnn,lstm")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(a.seed)
    data = batches(min(a.steps + a.warmup, 8), a, gen)
    models = []
    for k in a.models.split(","):
        if k == "indrnn":
            models.append(bench_model(k, a, data))
        elif k == "lstm":
            # nn.LSTM has two CPU paths, oneDNN's and ATen's; time both, keep the faster.
            runs = []
            for onednn in (True, False):
                with torch.backends.mkldnn.flags(enabled=onednn):
                    r = bench_model(k, a, data)
                r["onednn"] = onednn
                runs.append(r)
            models.append(min(runs, key=lambda r: r["median_seconds_per_step"]))
    print(
        json.dumps(
            {"torch": torch.__version__, "threads": torch.get_num_threads(), "models": models}
        )
    )


if __name__ == "__main__":
    main()
