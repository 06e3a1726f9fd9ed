//! `offgrid run` and `offgrid chat`: a terminal client. Answers stream
//! token by token from a running server (SSE), or, when no server answers
//! at the default address, from an engine inside this process on the same
//! models. Ctrl-C stops the generation (dropping the stream ends it on the
//! server; in-process, the sequence is dropped before its next step) and
//! returns to the prompt (chat) or exits (run). An API key can be given in
//! `OFFGRID_API_KEY`.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use offgrid_http::wire::{
    ChatCompletionChunk, ChatCompletionRequest, ChatMessage, Content, ErrorBody,
};
use offgrid_inference::{
    Event, GenerateRequest, ModelKind, Models, ModelsConfig, Prompt, Requester, SamplingParams,
};

/// Where answers come from.
pub(crate) struct Backend {
    temperature: f64,
    kind: Kind,
}

enum Kind {
    Remote(String),
    /// No server: the same model lifecycle and request path as the server's,
    /// in this process.
    Local(Arc<Models>),
}

fn server_answers(url: &str) -> bool {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()
        .and_then(|c| c.get(format!("{url}/health")).send().ok())
        .is_some_and(|r| r.status().is_success())
}

impl Backend {
    /// The server at `url` if one answers; otherwise, unless the URL was
    /// given explicitly, `model` loaded in-process from `models_dir`.
    pub(crate) fn connect(
        url: &str,
        explicit_url: bool,
        models_dir: &Path,
        model: &str,
        temperature: f64,
    ) -> Result<Self, String> {
        if server_answers(url) {
            return Ok(Backend {
                temperature,
                kind: Kind::Remote(url.to_owned()),
            });
        }
        if explicit_url {
            return Err(format!("cannot reach the server at {url}"));
        }
        let models =
            Models::open(models_dir, ModelsConfig::default()).map_err(|e| e.to_string())?;
        let status = models.status(model).ok_or_else(|| {
            format!(
                "no server at {url}, and no model `{model}` in {} (run `cargo xtask models`)",
                models_dir.display()
            )
        })?;
        if status.entry.kind != ModelKind::Chat {
            return Err(format!("{model} is not a chat model"));
        }
        eprintln!("offgrid: no server at {url}; running {model} in this process");
        Ok(Backend {
            temperature,
            kind: Kind::Local(models),
        })
    }

    fn answer(
        &self,
        model: &str,
        messages: &[ChatMessage],
        interrupted: &AtomicBool,
    ) -> Result<Option<String>, String> {
        match &self.kind {
            Kind::Remote(url) => stream_answer(url, model, messages, self.temperature, interrupted),
            Kind::Local(models) => {
                local_answer(models, model, messages, self.temperature, interrupted)
            }
        }
    }
}

/// Generates in-process, printing text as it comes.
fn local_answer(
    models: &Models,
    model: &str,
    messages: &[ChatMessage],
    temperature: f64,
    interrupted: &AtomicBool,
) -> Result<Option<String>, String> {
    let msgs: Vec<offgrid_inference::ChatMessage> = messages
        .iter()
        .map(|m| {
            let text = match &m.content {
                Some(Content::Text(t)) => t.as_str(),
                _ => "",
            };
            offgrid_inference::ChatMessage::new(&m.role, text)
        })
        .collect();
    // A long conversation loses its oldest turns rather than failing; the
    // system prompt and the last message stay.
    let first = msgs.iter().take_while(|m| m.role == "system").count();
    let trimmable = first..msgs.len().saturating_sub(1).max(first);
    let (tx, rx) = std::sync::mpsc::channel();
    let cancelled = Arc::new(AtomicBool::new(false));
    let stop = cancelled.clone();
    let gone = cancelled.clone();
    let who = Requester {
        key: "local".into(),
        guest: false,
    };
    let ticket = models.admit_generation(&who).map_err(|e| e.to_string())?;
    models
        .generate(
            ticket,
            GenerateRequest {
                model: model.to_owned(),
                prompt: Prompt::Chat(msgs),
                params: SamplingParams {
                    temperature,
                    seed: std::process::id().into(),
                    // Lowered to the room the context leaves.
                    max_tokens: usize::MAX,
                    ..SamplingParams::default()
                },
                explicit_max: None,
                keep_alive: None,
                trimmable,
                id: None,
                format: None,
            },
            Box::new(move |e| !stop.load(Ordering::SeqCst) && tx.send(e).is_ok()),
            Some(Box::new(move || !gone.load(Ordering::SeqCst))),
        )
        .map_err(|e| match e {
            offgrid_inference::ModelError::ContextExceeded { context, prompt } => format!(
                "the conversation ({prompt} tokens) no longer fits the model's context of {context} tokens"
            ),
            other => other.to_string(),
        })?;
    let mut answer = String::new();
    let mut out = std::io::stdout();
    loop {
        if interrupted.swap(false, Ordering::SeqCst) {
            cancelled.store(true, Ordering::SeqCst);
            let _ = writeln!(out);
            return Ok(None);
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Event::Text(t)) => {
                answer.push_str(&t);
                let _ = write!(out, "{t}");
                let _ = out.flush();
            }
            Ok(Event::Done(_)) => break,
            Ok(Event::Error(e)) => return Err(e),
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = writeln!(out);
    Ok(Some(answer))
}

/// Streams one chat completion to stdout; returns the answer text, or
/// `None` when interrupted.
fn stream_answer(
    url: &str,
    model: &str,
    messages: &[ChatMessage],
    temperature: f64,
    interrupted: &AtomicBool,
) -> Result<Option<String>, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .map_err(|e| e.to_string())?;
    let mut body = ChatCompletionRequest::new(model, messages.to_vec());
    body.stream = true;
    body.temperature = Some(temperature);
    let mut request = client
        .post(format!("{url}/v1/chat/completions"))
        .json(&body);
    if let Ok(key) = std::env::var("OFFGRID_API_KEY") {
        request = request.bearer_auth(key);
    }
    let response = request.send().map_err(|e| {
        format!("cannot reach the server at {url}: {e} (start it with `offgrid serve`)")
    })?;
    if !response.status().is_success() {
        let status = response.status();
        let message = response
            .json::<ErrorBody>()
            .map_or_else(|_| "request failed".to_owned(), |b| b.error.message);
        return Err(format!("{status}: {message}"));
    }
    let mut answer = String::new();
    let mut out = std::io::stdout();
    for line in BufReader::new(response).lines() {
        if interrupted.swap(false, Ordering::SeqCst) {
            // Dropping the response closes the connection: the server stops
            // generating before its next step.
            let _ = writeln!(out);
            return Ok(None);
        }
        let line = line.map_err(|e| e.to_string())?;
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        // An error mid-stream is an event of its own before `[DONE]`.
        if let Ok(error) = serde_json::from_str::<ErrorBody>(data) {
            let _ = writeln!(out);
            return Err(error.error.message);
        }
        let chunk: ChatCompletionChunk = serde_json::from_str(data).map_err(|e| e.to_string())?;
        let text = chunk
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.delta.content);
        if let Some(text) = text {
            answer.push_str(&text);
            let _ = write!(out, "{text}");
            let _ = out.flush();
        }
    }
    let _ = writeln!(out);
    Ok(Some(answer))
}

fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    // If a handler is already set (tests), keep going without one.
    let _ = ctrlc::set_handler(move || f.store(true, Ordering::SeqCst));
    flag
}

/// `offgrid run MODEL [PROMPT]`.
pub(crate) fn run(backend: &Backend, model: &str, prompt: Option<String>) -> ExitCode {
    let prompt = match prompt {
        Some(p) => p,
        None => {
            let mut text = String::new();
            if std::io::stdin().read_to_string(&mut text).is_err() || text.trim().is_empty() {
                eprintln!("offgrid: give a prompt as an argument or on stdin");
                return ExitCode::from(2);
            }
            text
        }
    };
    let interrupted = interrupt_flag();
    let messages = [ChatMessage::new("user", &prompt)];
    match backend.answer(model, &messages, &interrupted) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("offgrid: {e}");
            ExitCode::from(1)
        }
    }
}

/// `offgrid chat`.
pub(crate) fn chat(backend: &Backend, model: &str) -> ExitCode {
    let interrupted = interrupt_flag();
    let interactive = std::io::stdin().is_terminal();
    let mut history: Vec<ChatMessage> = Vec::new();
    let stdin = std::io::stdin();
    loop {
        if interactive {
            print!(">>> ");
            let _ = std::io::stdout().flush();
        }
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) => return ExitCode::SUCCESS,
            Ok(_) => {}
            Err(e) => {
                eprintln!("offgrid: {e}");
                return ExitCode::from(1);
            }
        }
        // Ctrl-C at the prompt: just a fresh prompt.
        interrupted.store(false, Ordering::SeqCst);
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if text == "/exit" || text == "/bye" {
            return ExitCode::SUCCESS;
        }
        history.push(ChatMessage::new("user", text));
        match backend.answer(model, &history, &interrupted) {
            Ok(Some(answer)) => history.push(ChatMessage::new("assistant", &answer)),
            Ok(None) => {
                history.pop();
            }
            Err(e) => {
                eprintln!("offgrid: {e}");
                history.pop();
            }
        }
    }
}
