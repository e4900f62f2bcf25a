"""Does transformers, loading a checkpoint `dtm apply` wrote, generate what dtm predicts for that schedule?

`dtm eval --model SOURCE --schedule S --continuations C.json` writes dtm's greedy continuations of the schedule's model;
`dtm apply --model SOURCE --schedule S --out DIR --dtype float32` writes the checkpoint. This loads DIR with
transformers in float32, greedily generates the same number of tokens for each prompt (one at a time, no padding, EOS
ignored as dtm ignores it) and compares. Given SOURCE and S too, it also compresses SOURCE in memory as dtm-spec says
and checks that every tensor of DIR equals it. A difference is listed with transformers' top-1/top-2 logit margin
where it happens (below about 1e-4 it is rounding, not a wrong checkpoint).

  python3 apply_check.py DIR C.json [SOURCE S.json]
"""
import json, sys, torch
from transformers import LlamaForCausalLM

out_dir, cont_file = sys.argv[1], sys.argv[2]
c = json.load(open(cont_file))
N = len(c['continuations'][0])
model = LlamaForCausalLM.from_pretrained(out_dir, dtype=torch.float32).cuda().eval()

if len(sys.argv) > 4:
    source = LlamaForCausalLM.from_pretrained(sys.argv[3], dtype=torch.float32).cuda().eval()
    schedule = json.load(open(sys.argv[4]))['components']
    with torch.no_grad():
        sd = source.state_dict()
        for comp, spec in schedule.items():
            w = sd[comp + '.weight']
            if spec == 'int8_rowwise':
                scale = w.abs().amax(1, keepdim=True) / 127
                scale[scale == 0] = 1
                w.copy_(torch.clamp(torch.round(w / scale), -127, 127) * scale)
            else:
                flat = w.view(-1)
                flat[torch.argsort(flat.abs(), stable=True)[:int(round(float(spec.split(':')[1]) * flat.numel()))]] = 0
        differing = [k for k, v in model.state_dict().items() if not torch.equal(v, sd[k])]
    print(f'apply check: {len(differing)} of {len(sd)} tensors differ from the source compressed in memory'
          + (f' (first: {differing[0]})' if differing else ''))

same, diffs = 0, []
with torch.no_grad():
    for p, (ids, expected) in enumerate(zip(c['prompt_ids'], c['continuations'])):
        x = torch.tensor([ids], device='cuda')
        logits, got = [], []
        for _ in range(N):  # greedy by hand: no generation config (EOS, min length) can intervene
            z = model(x).logits[0, -1].float()
            logits.append(z)
            got.append(int(z.argmax()))
            x = torch.cat([x, torch.tensor([[got[-1]]], device='cuda')], 1)
        if got == expected:
            same += 1
            continue
        i = next(j for j in range(N) if got[j] != expected[j])
        top2 = logits[i].topk(2).values
        diffs.append((p, i, float(top2[0] - top2[1])))
print(f'apply check: {same}/{len(c["continuations"])} prompts generate exactly dtm\'s {N}-token continuation'
      + ''.join(f'; prompt {p} differs at token {i} (transformers margin {m:.2e})' for p, i, m in diffs))
