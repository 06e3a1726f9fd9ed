//! Property tests of what reaches the inference crate from outside:
//!
//! - chat template rendering and tokenizing with hostile message roles and
//!   contents (any chat caller, guests included, chooses them);
//! - GGUF header parsing on mutated copies of the real SmolLM2 file (an
//!   admin imports files; a file in the models folder is read at start-up):
//!   changed integers, flipped bytes, cut files and inserted metadata. The
//!   property is "returns `Ok` or `Err`, never panics".
//!
//! A few cases by default (CI); `cargo xtask fuzz` sets `PROPTEST_CASES` to
//! run many. Failing seeds are saved to `properties.proptest-regressions`
//! beside this file and replayed first.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use offgrid_inference::{ChatMessage, ChatModel, ChatTemplate, GgufFile, TextTokenizer};
use proptest::prelude::*;

const MODEL_FILE: &str = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";

/// `PROPTEST_CASES` when set (`cargo xtask fuzz`), else `default_cases`.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn model_path() -> PathBuf {
    common::installed(MODEL_FILE)
}

/// The real model's tokenizer and chat template, built once.
fn real() -> &'static (TextTokenizer, ChatTemplate) {
    static REAL: OnceLock<(TextTokenizer, ChatTemplate)> = OnceLock::new();
    REAL.get_or_init(|| {
        let file = GgufFile::open(&model_path()).expect("open the real model");
        ChatModel::check(&file).expect("the real model checks")
    })
}

// ---------------------------------------------------------------- templates

/// Text a hostile chat caller might send: template syntax, the model's own
/// control tokens, control characters, right-to-left marks, long runs, and
/// anything at all.
fn hostile_text() -> impl Strategy<Value = String> {
    let fragments = proptest::sample::select(vec![
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        "{{ 7*7 }}",
        "{% for x in range(9) %}x{% endfor %}",
        "{{ raise_exception('boom') }}",
        "{% raw %}",
        "{% endraw %}",
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "system",
        "assistant",
        "user",
        "\n",
        "\r\n",
        "\0",
        "\u{202e}",
        "\u{feff}",
        "\u{fffd}",
        "é",
        "𝔘",
        "🦀",
        " ",
        "\\",
        "'",
        "\"",
        "{{ messages }}",
    ]);
    prop_oneof![
        3 => proptest::collection::vec(fragments, 0..40).prop_map(|v| v.concat()),
        2 => any::<String>(),
        1 => ("[{}%#<|>a ]{1,4}", 1usize..20_000).prop_map(|(s, n)| s.repeat(n)),
    ]
}

fn role() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(vec!["system", "user", "assistant", "tool"])
            .prop_map(str::to_owned),
        1 => hostile_text(),
    ]
}

fn conversation() -> impl Strategy<Value = Vec<ChatMessage>> {
    proptest::collection::vec(
        (role(), hostile_text()).prop_map(|(role, content)| ChatMessage { role, content }),
        0..24,
    )
}

/// Renders with a template whose output holds every content verbatim, and
/// checks that it does: message text is data, never template code.
fn renders_verbatim(
    template: &ChatTemplate,
    messages: &[ChatMessage],
    add_prompt: bool,
) -> Result<(), TestCaseError> {
    let text = template
        .render(messages, add_prompt)
        .map_err(|e| TestCaseError::fail(format!("render failed: {e}")))?;
    for m in messages {
        prop_assert!(
            text.contains(&m.content),
            "content not verbatim: {:?}",
            m.content
        );
        prop_assert!(text.contains(&m.role), "role not verbatim: {:?}", m.role);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn chatml_fallback_renders_hostile_messages_verbatim(
        messages in conversation(),
        add_prompt in any::<bool>(),
    ) {
        let template = ChatTemplate::new(None, "<s>", "</s>").expect("fallback");
        renders_verbatim(&template, &messages, add_prompt)?;
    }

    #[test]
    fn the_real_template_renders_hostile_messages_verbatim(
        messages in conversation(),
        add_prompt in any::<bool>(),
    ) {
        renders_verbatim(&real().1, &messages, add_prompt)?;
    }

    #[test]
    fn hostile_text_tokenizes_and_decodes(text in hostile_text()) {
        let tokenizer = &real().0;
        let ids = tokenizer.encode(&text).expect("any text encodes");
        let _ = tokenizer.decode(&ids).expect("its ids decode");
    }

    #[test]
    fn arbitrary_ids_decode_or_fail_cleanly(ids in proptest::collection::vec(any::<u32>(), 0..64)) {
        let tokenizer = &real().0;
        let _ = tokenizer.decode(&ids);
        for id in ids {
            let _ = tokenizer.token(id);
            let _ = tokenizer.is_special(id);
        }
    }

    #[test]
    fn odd_templates_compile_and_render_or_fail_cleanly(
        parts in proptest::collection::vec(proptest::sample::select(vec![
            "{%", "%}", "{{", "}}", " for m in messages ", " endfor ", " if ", " endif ",
            " else ", "loop.index", "m['role']", "m.content", "messages[0]", "messages[-1]",
            "|upper", "|length", ".strip()", ".split('x')", " + ", " ~ ", "bos_token",
            "add_generation_prompt", "raise_exception('no')", " set x = 1 ", " macro f() ",
            " endmacro ", "f()", " call f() ", " endcall ", "(", ")", "[", "]", "'", "\"",
            "text", "\n", " is defined ", " not ", "none", " namespace() ",
        ]), 0..30),
        messages in conversation(),
    ) {
        let source = parts.concat();
        if let Ok(t) = ChatTemplate::new(Some(&source), "<s>", "</s>") {
            let _ = t.render(&messages, true);
        }
    }
}

// --------------------------------------------------------------------- GGUF

/// One integer field of the real file's header, found by walking it.
#[derive(Debug, Clone)]
struct Field {
    at: usize,
    width: usize,
    what: String,
}

/// The real file's header bytes (everything before the tensor data) and its
/// integer fields.
struct Header {
    bytes: Vec<u8>,
    file_len: u64,
    fields: Vec<Field>,
    /// Where the last metadata entry ends (new entries go there).
    metadata_end: usize,
}

/// A little-endian cursor over the header that notes each integer field.
struct Walker<'a> {
    bytes: &'a [u8],
    pos: usize,
    fields: Vec<Field>,
}

impl Walker<'_> {
    fn int(&mut self, width: usize, what: impl Into<String>) -> u64 {
        let mut v = [0u8; 8];
        v[..width].copy_from_slice(&self.bytes[self.pos..self.pos + width]);
        self.fields.push(Field {
            at: self.pos,
            width,
            what: what.into(),
        });
        self.pos += width;
        u64::from_le_bytes(v)
    }

    fn skip(&mut self, n: usize) {
        self.pos += n;
    }

    fn string(&mut self, what: &str) -> String {
        let len = self.int(8, format!("{what} length")) as usize;
        let s = String::from_utf8_lossy(&self.bytes[self.pos..self.pos + len]).into_owned();
        self.pos += len;
        s
    }

    /// A value of GGUF type `ty`; `note` says whether to record its fields
    /// (the first few elements of an array only: the vocabulary has 49,152).
    fn value(&mut self, ty: u64, what: &str, note: bool) {
        let before = self.fields.len();
        match ty {
            0 | 1 | 7 => {
                self.int(1, what);
            }
            2 | 3 => {
                self.int(2, what);
            }
            4..=6 => {
                self.int(4, what);
            }
            10..=12 => {
                self.int(8, what);
            }
            8 => {
                self.string(what);
            }
            9 => {
                let elem = self.int(4, format!("{what} element type"));
                let n = self.int(8, format!("{what} element count"));
                for i in 0..n {
                    self.value(elem, &format!("{what}[{i}]"), note && i < 4);
                }
            }
            other => panic!("the real model has an unknown value type {other} at {what}"),
        }
        if !note {
            self.fields.truncate(before);
        }
    }
}

/// The real model's header, walked once.
fn header() -> &'static Header {
    static HEADER: OnceLock<Header> = OnceLock::new();
    HEADER.get_or_init(|| {
        let path = model_path();
        let data_start = GgufFile::open(&path)
            .expect("open the real model")
            .content()
            .tensor_data_offset as usize;
        let file_len = std::fs::metadata(&path).expect("model size").len();
        let mut bytes = vec![0u8; data_start];
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_exact(&mut bytes))
            .expect("read the header");
        let mut w = Walker {
            bytes: &bytes,
            pos: 0,
            fields: Vec::new(),
        };
        assert_eq!(&bytes[..4], b"GGUF");
        w.skip(4);
        assert_eq!(w.int(4, "version"), 3, "GGUF v3");
        let tensors = w.int(8, "tensor count");
        let kvs = w.int(8, "metadata count");
        for _ in 0..kvs {
            let key = w.string("key");
            let ty = w.int(4, format!("{key} type"));
            w.value(ty, &key, true);
        }
        let metadata_end = w.pos;
        for _ in 0..tensors {
            let name = w.string("tensor name");
            let dims = w.int(4, format!("{name} dimension count"));
            for d in 0..dims {
                w.int(8, format!("{name} dimension {d}"));
            }
            w.int(4, format!("{name} type"));
            w.int(8, format!("{name} offset"));
        }
        let fields = w.fields;
        Header {
            bytes,
            file_len,
            fields,
            metadata_end,
        }
    })
}

/// Integers that find bugs: zero, one, edges of each width, powers of two.
fn interesting_int() -> impl Strategy<Value = u64> {
    prop_oneof![
        proptest::sample::select(vec![
            0,
            1,
            2,
            3,
            31,
            32,
            0x7f,
            0x80,
            0xff,
            0x7fff,
            0xffff,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            1 << 32,
            1 << 40,
            1 << 62,
            i64::MAX as u64,
            u64::MAX,
            u64::MAX - 1,
        ]),
        any::<u64>(),
        0u64..4096,
    ]
}

/// A metadata value of any GGUF type, as (type, encoded bytes).
fn metadata_value() -> impl Strategy<Value = (u32, Vec<u8>)> {
    let int = |ty: u32, width: usize| {
        interesting_int().prop_map(move |v| (ty, v.to_le_bytes()[..width].to_vec()))
    };
    prop_oneof![
        int(0, 1),
        int(1, 1),
        int(2, 2),
        int(3, 2),
        int(4, 4),
        int(5, 4),
        int(10, 8),
        int(11, 8),
        any::<f32>().prop_map(|f| (6, f.to_le_bytes().to_vec())),
        any::<f64>().prop_map(|f| (12, f.to_le_bytes().to_vec())),
        any::<bool>().prop_map(|b| (7, vec![u8::from(b)])),
        "[a-z{}%<|> ]{0,40}".prop_map(|s| {
            let mut v = (s.len() as u64).to_le_bytes().to_vec();
            v.extend_from_slice(s.as_bytes());
            (8, v)
        }),
        (
            interesting_int(),
            proptest::collection::vec(any::<u32>(), 0..8)
        )
            .prop_map(|(claimed, elems)| {
                // An array of u32 whose count may lie.
                let mut v = 4u32.to_le_bytes().to_vec();
                v.extend_from_slice(&claimed.min(elems.len() as u64 * 2).to_le_bytes());
                for e in elems {
                    v.extend_from_slice(&e.to_le_bytes());
                }
                (9, v)
            }),
    ]
}

/// Keys the loader reads. An inserted entry with a key the file already
/// has replaces the earlier value.
const KEYS: &[&str] = &[
    "general.architecture",
    "general.name",
    "llama.context_length",
    "llama.embedding_length",
    "llama.block_count",
    "llama.feed_forward_length",
    "llama.rope.dimension_count",
    "llama.attention.head_count",
    "llama.attention.head_count_kv",
    "llama.attention.layer_norm_rms_epsilon",
    "llama.rope.freq_base",
    "llama.vocab_size",
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.add_bos_token",
    "tokenizer.chat_template",
];

/// What is done to a copy of the real file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite one integer field of the header (truncated to its width).
    SetField { field: usize, value: u64 },
    /// XOR one header byte.
    FlipByte { at: usize, xor: u8 },
    /// Cut the file short.
    Truncate { len: u64 },
    /// Add a metadata entry (replacing the value of an existing key).
    Insert {
        key: String,
        ty: u32,
        value: Vec<u8>,
    },
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z._]{0,24}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), interesting_int())
            .prop_map(|(field, value)| Mutation::SetField { field, value }),
        2 => (any::<usize>(), 1u8..=255).prop_map(|(at, xor)| Mutation::FlipByte { at, xor }),
        1 => any::<u64>().prop_map(|len| Mutation::Truncate { len }),
        3 => (key(), metadata_value())
            .prop_map(|(key, (ty, value))| Mutation::Insert { key, ty, value }),
    ]
}

/// Writes a mutated copy of the real file: the header, changed, then the
/// tensor data as a hole of the right size (sparse: only the header is
/// written, so a case costs milliseconds, not a 90 MB copy).
fn write_mutant(dir: &Path, mutations: &[Mutation]) -> PathBuf {
    let h = header();
    let mut bytes = h.bytes.clone();
    let mut len = h.file_len;
    let mut metadata_end = h.metadata_end;
    for m in mutations {
        match m {
            Mutation::SetField { field, value } => {
                let f = &h.fields[field % h.fields.len()];
                // Earlier insertions shift fields past the metadata.
                let shift = metadata_end - h.metadata_end;
                let at = if f.at >= h.metadata_end {
                    f.at + shift
                } else {
                    f.at
                };
                bytes[at..at + f.width].copy_from_slice(&value.to_le_bytes()[..f.width]);
            }
            Mutation::FlipByte { at, xor } => {
                let at = at % bytes.len();
                bytes[at] ^= xor;
            }
            Mutation::Truncate { len: l } => len = l % (len + 1),
            Mutation::Insert { key, ty, value } => {
                let mut entry = (key.len() as u64).to_le_bytes().to_vec();
                entry.extend_from_slice(key.as_bytes());
                entry.extend_from_slice(&ty.to_le_bytes());
                entry.extend_from_slice(value);
                let count_at = 4 + 4 + 8;
                let mut count = [0u8; 8];
                count.copy_from_slice(&bytes[count_at..count_at + 8]);
                let count = u64::from_le_bytes(count).wrapping_add(1);
                bytes[count_at..count_at + 8].copy_from_slice(&count.to_le_bytes());
                bytes.splice(metadata_end..metadata_end, entry.iter().copied());
                metadata_end += entry.len();
                len += entry.len() as u64;
            }
        }
    }
    let path = dir.join("mutant.gguf");
    let mut file = std::fs::File::create(&path).expect("create mutant");
    let keep = bytes.len().min(len as usize);
    file.write_all(&bytes[..keep]).expect("write mutant");
    file.set_len(len).expect("size mutant");
    path
}

/// Opens a file as `offgrid models import` and the server do before loading
/// weights: the header, the tensor bounds, the architecture, the tokenizer
/// and the chat template, and what the manifest records.
fn open_and_check(path: &Path) {
    if let Ok(file) = GgufFile::open(path) {
        let _ = file.architecture();
        let _ = file.context_length();
        let _ = file.quantization();
        let _ = file.parameter_count();
        if let Ok((tokenizer, template)) = ChatModel::check(&file) {
            let _ = tokenizer.encode("Hello, world!");
            let _ = template.render(&[ChatMessage::new("user", "Hi")], true);
        }
    }
}

fn is_alignment(m: &Mutation) -> bool {
    matches!(m, Mutation::Insert { key, .. } if key == "general.alignment")
}

/// Whether a field is one of a tensor's dimensions.
fn is_dimension(field: usize) -> bool {
    let h = header();
    let what = &h.fields[field % h.fields.len()].what;
    what.contains(" dimension ") && !what.ends_with("dimension count")
}

/// Keeps tensor dimensions below 2^16, whose products cannot overflow (see
/// `huge_tensor_dimensions_open_or_fail_cleanly`).
fn small_dimensions(mutations: Vec<Mutation>) -> Vec<Mutation> {
    mutations
        .into_iter()
        .map(|m| match m {
            Mutation::SetField { field, value } if is_dimension(field) => Mutation::SetField {
                field,
                value: value % 65_536,
            },
            other => other,
        })
        .collect()
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn mutated_headers_open_or_fail_cleanly(
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        open_and_check(&write_mutant(dir.path(), &small_dimensions(mutations)));
    }
}

proptest! {
    #![proptest_config(config(8))]

    /// Changed hyperparameters and tokenizer metadata, then the weights are
    /// loaded too (from the hole: zeros).
    #[test]
    fn changed_metadata_loads_or_fails_cleanly(
        key in proptest::sample::select(KEYS),
        value in metadata_value(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Mutation::Insert { key: key.to_owned(), ty: value.0, value: value.1 };
        let path = write_mutant(dir.path(), &[m]);
        let _ = ChatModel::load("mutant", &path);
    }

    /// Issue 7, defect 15: `general.alignment = 0` divides by zero in
    /// candle's reader.
    #[test]
    fn any_alignment_opens_or_fails_cleanly(
        value in prop_oneof![
            // The integer types candle reads an alignment from, zero often.
            (0u32..6, prop_oneof![Just(0u64), interesting_int()]).prop_map(|(ty, v)| {
                let width = [1, 1, 2, 2, 4, 4][ty as usize];
                (ty, v.to_le_bytes()[..width].to_vec())
            }),
            metadata_value(),
        ],
        others in proptest::collection::vec(mutation(), 0..2),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut mutations: Vec<Mutation> = others.into_iter().filter(|m| !is_alignment(m)).collect();
        mutations.push(Mutation::Insert { key: "general.alignment".to_owned(), ty: value.0, value: value.1 });
        open_and_check(&write_mutant(dir.path(), &mutations));
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// Found by `mutated_headers_open_or_fail_cleanly`: a tensor dimension
    /// of 2^62 overflowed the element count (candle's `Shape::elem_count`,
    /// then called by `GgufFile::open` before its bounds check): a panic in
    /// debug builds, a wrapped count that could slip past the bounds check
    /// in release. Our own header parser now checks every product.
    #[test]
    fn huge_tensor_dimensions_open_or_fail_cleanly(
        dims in proptest::collection::vec((any::<usize>(), interesting_int()), 1..3),
    ) {
        let h = header();
        let dimension_fields: Vec<usize> = (0..h.fields.len()).filter(|&i| is_dimension(i)).collect();
        let mutations: Vec<Mutation> = dims
            .into_iter()
            .map(|(i, value)| Mutation::SetField {
                field: dimension_fields[i % dimension_fields.len()],
                value,
            })
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        open_and_check(&write_mutant(dir.path(), &mutations));
    }
}

#[test]
fn the_walker_reads_the_real_header() {
    // The mutations above are only as good as the map of the header.
    let h = header();
    assert!(h.fields.len() > 100, "{} fields", h.fields.len());
    for what in [
        "tensor count",
        "metadata count",
        "general.architecture length",
    ] {
        assert!(h.fields.iter().any(|f| f.what == what), "no field {what}");
    }
    assert!(h.metadata_end < h.bytes.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = write_mutant(dir.path(), &[]);
    let file = GgufFile::open(&copy).expect("an unchanged copy opens");
    ChatModel::check(&file).expect("and checks");
}
