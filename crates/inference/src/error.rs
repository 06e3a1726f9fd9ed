//! The inference crate's error enum.

/// What went wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// Not a GGUF file, or a damaged one.
    #[error("{path} is not a valid GGUF model: {reason}")]
    InvalidGguf {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A GGUF model of an architecture we cannot run.
    #[error(
        "unsupported model architecture {0:?}: supported are llama (SmolLM2, TinyLlama, Llama, Mistral), qwen2 and qwen3"
    )]
    UnsupportedArchitecture(String),
    /// Metadata needed to build the tokenizer or template is missing or malformed.
    #[error("model metadata: {0}")]
    Metadata(String),
    /// An output format (JSON schema) that cannot be enforced.
    #[error("format: {0}")]
    Format(String),
    /// Constrained decoding failed mid-generation (its work limits).
    #[error("constrained decoding: {0}")]
    Constraint(String),
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template failed to render.
    #[error("chat template: {0}")]
    Template(String),
    /// The prompt does not fit the model's context.
    #[error("prompt of {tokens} tokens exceeds the model's context length of {context} tokens")]
    ContextLength {
        /// Prompt tokens.
        tokens: usize,
        /// Context length.
        context: usize,
    },
    /// A model id that cannot name a folder (empty, too long, a path
    /// separator, a leading dot, characters outside `[A-Za-z0-9._:-]`).
    #[error(
        "invalid model name {0:?}: use 1 to 64 letters, digits, '.', '_', ':' or '-', not starting with '.'"
    )]
    InvalidModelId(String),
    /// A model with this id is already installed.
    #[error("a model named {0:?} is already installed (remove it first or pick another --name)")]
    ModelExists(String),
    /// No model with this id is installed.
    #[error("no model named {0:?} is installed")]
    ModelNotFound(String),
    /// A file or folder offered for import is not a model we can run.
    #[error("{path} cannot be imported: {reason}")]
    NotAModel {
        /// The file or folder.
        path: String,
        /// Why.
        reason: String,
    },
    /// candle failed during the forward pass.
    #[error("model execution: {0}")]
    Candle(String),
}

impl From<candle_core::Error> for InferenceError {
    fn from(e: candle_core::Error) -> Self {
        InferenceError::Candle(e.to_string())
    }
}

/// Runs `f`, turning a panic inside a dependency (candle, tokenizers,
/// minijinja) into an error: a bad model file fails its own load, never
/// the thread that loads it (a request's, the registry scan's).
pub(crate) fn catch_panics<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, InferenceError>,
) -> Result<T, InferenceError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let cause = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_owned());
        Err(InferenceError::Candle(format!("{what} failed: {cause}")))
    })
}
