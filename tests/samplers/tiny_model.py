"""Build a tiny random Llama with a locally trained tokenizer, so engine tests need no model hub.

The weights are random: the text is gibberish, but it is deterministic gibberish, which is what
seeding, batching, prefix-cache and length-limit tests need.
"""

from __future__ import annotations

import random
from pathlib import Path

MAX_POSITIONS = 256
VOCAB_TARGET = 512

# A Llama-3 style template, small enough to read: chat_template=True tests render through it.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def corpus(lines: int = 400, seed: int = 0) -> list[str]:
    """Grade-school arithmetic word problems and step-by-step answers, the text prmflow handles."""
    rng = random.Random(seed)
    names = ["Ada", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hana", "Ivy", "Jon"]
    things = ["apples", "pencils", "marbles", "books", "coins", "stickers", "cookies", "shells"]
    verbs = ["buys", "finds", "gets", "loses", "gives away", "sells", "eats", "collects"]
    out = []
    for _ in range(lines):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        name, thing, verb = rng.choice(names), rng.choice(things), rng.choice(verbs)
        kind = rng.randrange(3)
        if kind == 0:
            out.append(f"{name} has {a} {thing} and {verb} {b} more. How many {thing} now?")
        elif kind == 1:
            out.append(f"Step 1: {a} + {b} = {a + b}. Step 2: {a + b} * 2 = {(a + b) * 2}. The answer is {(a + b) * 2}.")
        else:
            out.append(f"Let's think step by step. {name} starts with {a}; {a} - {b % a if a else 0} = {a - (b % a if a else 0)}.")
    return out


def build_tiny_llama(path: Path, seed: int = 0) -> Path:
    """Write config, safetensors weights and a fast tokenizer to ``path``; return ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    specials = ["<unk>", "<s>", "</s>", "<pad>", "<|user|>", "<|assistant|>", "<|system|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_TARGET,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=MAX_POSITIONS,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,  # head_dim 32: the smallest head size vLLM's CPU attention takes
        num_key_value_heads=1,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    # Random init gives near-uniform logits; a larger output scale makes sampling less flat so
    # greedy vs. sampled and stop-string tests see varied but repeatable text.
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)
    model.save_pretrained(path, safe_serialization=True)
    model.generation_config.save_pretrained(path)
    return path
