#!/usr/bin/python3
"""PyTorch counterpart of `gemma2 train` for bench/train_bench.sh: the same Gemma 2 shape
(soft-caps, GQA, GeGLU, pre+post norms, tied head, NEOX RoPE), fp32, AdamW, random tokens.
Prints one line: "torch tok/s X cpu_s Y steps N". Usage: train_bench_torch.py STEPS THREADS"""
import math, sys, time
import torch
import torch.nn.functional as F

V, D, L, H, KV, HD, FF, B, T = 4096, 256, 6, 4, 1, 64, 1024, 8, 256
ACAP, FCAP, EPS = 50.0, 30.0, 1e-6


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * (1 + w)


class Layer(torch.nn.Module):
    def __init__(s):
        super().__init__()
        s.q = torch.nn.Linear(D, H * HD, bias=False)
        s.k = torch.nn.Linear(D, KV * HD, bias=False)
        s.v = torch.nn.Linear(D, KV * HD, bias=False)
        s.o = torch.nn.Linear(H * HD, D, bias=False)
        s.gate = torch.nn.Linear(D, FF, bias=False)
        s.up = torch.nn.Linear(D, FF, bias=False)
        s.down = torch.nn.Linear(FF, D, bias=False)
        s.n = torch.nn.Parameter(torch.zeros(4, D))

    def forward(s, x, cos, sin, mask):
        h = rms(x, s.n[0])
        q = s.q(h).view(B, T, H, HD).transpose(1, 2)
        k = s.k(h).view(B, T, KV, HD).transpose(1, 2)
        v = s.v(h).view(B, T, KV, HD).transpose(1, 2)

        def rope(t):
            a, b = t[..., : HD // 2], t[..., HD // 2 :]
            return torch.cat([a * cos - b * sin, b * cos + a * sin], -1)

        q, k = rope(q), rope(k)
        k = k.repeat_interleave(H // KV, 1)
        v = v.repeat_interleave(H // KV, 1)
        s_ = (q @ k.transpose(-1, -2)) * HD ** -0.5
        s_ = ACAP * torch.tanh(s_ / ACAP) + mask
        a = torch.softmax(s_, -1) @ v
        x = x + rms(s.o(a.transpose(1, 2).reshape(B, T, H * HD)), s.n[1])
        h = rms(x, s.n[2])
        m = s.down(F.gelu(s.gate(h), approximate="tanh") * s.up(h))
        return x + rms(m, s.n[3])


class Model(torch.nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = torch.nn.Parameter(torch.randn(V, D) / math.sqrt(D))
        s.layers = torch.nn.ModuleList([Layer() for _ in range(L)])
        s.fn = torch.nn.Parameter(torch.zeros(D))

    def forward(s, ids, cos, sin, mask):
        x = s.emb[ids] * math.sqrt(D)
        for l in s.layers:
            x = l(x, cos, sin, mask)
        z = rms(x, s.fn) @ s.emb.t()
        return FCAP * torch.tanh(z / FCAP)


def main():
    steps, threads = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = Model()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    inv = 10000.0 ** (-torch.arange(0, HD // 2, dtype=torch.float64) * 2 / HD)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None]
    cos, sin = ang.cos().float(), ang.sin().float()
    mask = torch.full((T, T), float("-inf")).triu(1)
    ids = torch.randint(0, V, (B, T + 1))
    x, y = ids[:, :-1], ids[:, 1:]

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(x, cos, sin, mask).reshape(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print("torch tok/s %.1f cpu_s %.2f wall_s %.2f steps %d" % (steps * B * T / wall, cpu, wall, steps))


if __name__ == "__main__":
    main()
