"""How far float16 FDTs can agree at all: transformers against itself, and dtm against both of its attention paths.

Per-prompt FDTs of single-component prune cases (the `dtm golden --dtype float16 --out` file), recomputed with
transformers in float16 three ways from the same inputs (prompt + dtm's base continuation, right-padded, as
../shared/gpu/fp16_agreement.py does): SDPA attention (transformers' default), eager attention, and SDPA over the
prompts in two half batches (other matrix shapes, so other kernels). Their pairwise agreement is the floor any float16
implementation can be held to; dtm's agreement with each is printed beside it.

  python3 fp16_noise.py OUT.json MODEL_DIR
"""
import json, sys, torch
from transformers import LlamaForCausalLM

out, model_dir = sys.argv[1], sys.argv[2]
g = json.load(open(out))
N = g['n_generated']
seqs = [ids + cont for ids, cont in zip(g['prompt_ids'], g['base_continuations'])]
L = max(len(s) for s in seqs)
x = torch.tensor([s + [0] * (L - len(s)) for s in seqs], device='cuda')
mask = torch.tensor([[1] * len(s) + [0] * (L - len(s)) for s in seqs], device='cuda')
P = [len(ids) for ids in g['prompt_ids']]
idx = torch.tensor([[p - 1 + i for i in range(N)] for p in P], device='cuda')


def load(attn):
    return LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float16, attn_implementation=attn).cuda().eval()


def scored(model, halves):
    parts = [slice(0, len(P))] if not halves else [slice(0, len(P) // 2), slice(len(P) // 2, len(P))]
    out = []
    for s in parts:
        lg = model(x[s], attention_mask=mask[s]).logits.float()
        out.append(torch.gather(lg, 1, idx[s].unsqueeze(-1).expand(-1, -1, lg.shape[-1])).argmax(-1))
    return torch.cat(out)


def fdts(model, halves):
    with torch.no_grad():
        ref = scored(model, halves)
        sd = {k: v.clone() for k, v in model.state_dict().items()}
        result = []
        for c in g['cases']:
            model.load_state_dict(sd)
            for comp in c['components']:
                flat = model.state_dict()[comp + '.weight'].view(-1)
                k = int(round(c['sparsity'] * flat.numel()))
                flat[torch.argsort(flat.float().abs(), stable=True)[:k]] = 0
            div = scored(model, halves) != ref
            result.append(torch.where(div.any(1), div.float().argmax(1), torch.full((len(P),), N, device='cuda')).tolist())
        model.load_state_dict(sd)
        return result


dtm = [c['fdt'] for c in g['cases']]
sdpa_model = load('sdpa')
sdpa = fdts(sdpa_model, False)
halves = fdts(sdpa_model, True)
del sdpa_model
eager = fdts(load('eager'), False)


def agree(a, b):
    pairs = [(u, v) for ca, cb in zip(a, b) for u, v in zip(ca, cb)]
    return 100.0 * sum(u == v for u, v in pairs) / len(pairs)


print(f'fp16 FDT agreement over {len(dtm)} cases x {len(P)} prompts:')
print(f'  transformers sdpa vs eager      {agree(sdpa, eager):5.1f}%')
print(f'  transformers sdpa vs sdpa halves {agree(sdpa, halves):5.1f}%')
print(f'  dtm vs transformers sdpa        {agree(dtm, sdpa):5.1f}%')
print(f'  dtm vs transformers eager       {agree(dtm, eager):5.1f}%')
per_prompt = [sum(dtm[c][p] != sdpa[c][p] for c in range(len(dtm))) for p in range(len(P))]
print('  dtm vs sdpa, disagreeing cases per prompt:', per_prompt)
