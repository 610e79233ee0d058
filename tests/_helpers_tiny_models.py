"""Tiny, randomly initialised local models for the transformers backends' tests.

Everything is built here from configs: a byte-level BPE tokenizer trained with the
``tokenizers`` library on a few sentences, image processors from their defaults (the PIL
ones, since torchvision is not needed), and LLaVA-, Qwen2-VL- and Llama-family models of a
few hundred thousand parameters. Each builder saves to a folder and returns its path, so the
tests load them through the public backends exactly as a user loads a real checkpoint.
The generated text is random; tests assert on shapes, timestamps, batching and errors only.
"""

from __future__ import annotations

from pathlib import Path

_CORPUS = [
    "Describe what is happening in this video frame, focusing on activities.",
    "A person opens the door and walks into the kitchen holding a cup.",
    "Someone is searching the video for this moment. Answer in short sentences.",
    '{"intervals": [{"start": 1.0, "end": 2.5, "score": 0.9}]} 0123456789 [] {} , : "',
    "USER: ASSISTANT: system user assistant model",
]

LLAVA_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'].upper() }}: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}\n"
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(special: list[str], *, vocab_size: int = 400, chat_template: str | None = None):
    """A byte-level BPE tokenizer trained on a tiny corpus, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    base_special = ["<pad>", "<s>", "</s>", "<unk>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=base_special + special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_special_tokens=special,
    )
    if chat_template is not None:
        wrapped.chat_template = chat_template
    return wrapped


def _without_video(processor_cls):
    """The processor class minus its video sub-processor (whose default implementation needs
    torchvision); the saved files are the same as the original class writes for images."""
    from frame_describer.hf_describer import image_only_processor_class

    return image_only_processor_class(processor_cls)


def _vocab(tokenizer) -> int:
    return len(tokenizer)


def build_tiny_llava(path: str | Path) -> Path:
    """A LLaVA-1.5-shaped model: CLIP vision tower (32 px, 8 px patches -> 16 image tokens) + Llama."""
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    path = Path(path)
    tokenizer = build_tokenizer(["<image>"], chat_template=LLAVA_TEMPLATE)
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=32)
    text = LlamaConfig(vocab_size=_vocab(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token_id,
                         image_seq_length=16, vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_TEMPLATE)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_qwen2_vl(path: str | Path) -> Path:
    """A Qwen2-VL-shaped model: 14 px patches merged 2x2, M-RoPE text decoder, tiny image budget."""
    import torch
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
        Qwen2VLProcessor,
    )

    path = Path(path)
    special = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer = build_tokenizer(special, chat_template=QWEN_TEMPLATE)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in special}
    text = dict(vocab_size=_vocab(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=ids["<|im_end|>"])
    vision = dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2)
    config = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                           video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                           vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(config).eval()
    image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112)
    processor = _without_video(Qwen2VLProcessor)(image_processor=image_processor, tokenizer=tokenizer,
                                                 chat_template=QWEN_TEMPLATE)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_causal_lm(path: str | Path, *, chat_template: bool = True, max_positions: int = 2048) -> Path:
    """A Llama-shaped causal LM with (or without) a chat template, for the transformers reasoner."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    special = ["<|im_start|>", "<|im_end|>"]
    tokenizer = build_tokenizer(special, chat_template=CHAT_TEMPLATE if chat_template else None)
    config = LlamaConfig(vocab_size=_vocab(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=max_positions,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_sentence_encoder(path: str | Path, *, dim: int = 16) -> Path:
    """A sentence-transformers folder (BERT, one layer of width ``dim``, mean pooling, normalised),
    laid out as a downloaded checkpoint is, so the embedding reasoners load it by path."""
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    try:  # where sentence-transformers 6 keeps them; older versions only have ``models``
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Normalize, Pooling, Transformer

    path = Path(path)
    words = sorted({w.strip(".,;:!?\"'{}[]").lower() for line in _CORPUS for w in line.split()} - {""})
    base = path / "base"
    base.mkdir(parents=True, exist_ok=True)
    (base / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(base / "vocab.txt"))
    config = BertConfig(vocab_size=len(words) + 5, hidden_size=dim, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=2 * dim, max_position_embeddings=64)
    BertModel(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    st = SentenceTransformer(modules=[Transformer(str(base), max_seq_length=32), Pooling(dim, "mean"), Normalize()],
                             device="cpu")
    out = path / "model"
    st.save(str(out))
    return out
