"""Offline text encoders: a word-level tokenizer built locally and a small UMT5 encoder from a config.

Real models use any transformers encoder (UMT5 as in Wan, T5, CLIP text) loaded from a folder.
For worlds trained from scratch, such as the Shapes world, nothing needs a download: the tokenizer is
built here with Hugging Face `tokenizers` from a word list, and the encoder is a `UMT5EncoderModel`
made from a small config. Both are saved with the model and loaded back by transformers.
"""

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>"]


def build_word_tokenizer(words: list[str], model_max_length: int = 512) -> PreTrainedTokenizerFast:
    """A fast word-level tokenizer over `words`.

    Its normaliser is part of the saved tokenizer, so a model reads prompts exactly as it was trained
    to: Unicode NFKC, lower case, runs of white space folded, a final period dropped. Punctuation is
    split into tokens of its own and `</s>` closes every sequence; unknown words become `<unk>`.
    """
    vocab = {token: i for i, token in enumerate(dict.fromkeys([*SPECIAL_TOKENS, *words]))}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.NFKC(),
            normalizers.Lowercase(),
            normalizers.Replace(Regex(r"\s+"), " "),
            normalizers.Replace(Regex(r"[\s.]+$"), ""),
            normalizers.Strip(),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
    )


def build_text_encoder(vocab_size: int, d_model: int = 64, num_layers: int = 2, num_heads: int = 4) -> UMT5EncoderModel:
    """A small UMT5 encoder with random weights, for worlds whose text encoder is trained from scratch."""
    config = UMT5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=d_model // num_heads,
        d_ff=4 * d_model,
        num_layers=num_layers,
        num_heads=num_heads,
        relative_attention_num_buckets=16,
        relative_attention_max_distance=64,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return UMT5EncoderModel(config)


def word_vocabulary(tokenizer) -> list[str] | None:
    """The words a word-level tokenizer knows, special tokens left out, in its order; None for any other tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not isinstance(backend.model, WordLevel):
        return None
    special = set(tokenizer.all_special_tokens)
    return [word for word, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]) if word not in special]


def unknown_words(tokenizer, prompt: str) -> list[str]:
    """The pieces of `prompt` that `tokenizer` reads as its unknown token, once each, in order ([] when it has none)."""
    backend, unk = getattr(tokenizer, "backend_tokenizer", None), tokenizer.unk_token_id
    if backend is None or unk is None:
        return []
    encoding = backend.encode(prompt, add_special_tokens=False)
    found = [prompt[start:end] for token, (start, end) in zip(encoding.ids, encoding.offsets) if token == unk]
    return list(dict.fromkeys(found))
