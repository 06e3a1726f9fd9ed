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

use offgrid_inference::{
    ChatMessage, ChatModel, Engine, EngineConfig, Event, Job, ModelKind, ModelRegistry,
    SamplingParams,
};
use serde_json::{Value, json};

/// Where answers come from.
pub(crate) struct Backend {
    temperature: f64,
    kind: Kind,
}

enum Kind {
    /// A running server.
    Remote(String),
    /// An engine in this process.
    Local {
        engine: Engine,
        model: Arc<ChatModel>,
    },
}

/// Whether an OffGrid server answers at `url`.
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
        let registry = ModelRegistry::new(models_dir);
        let entry = registry.get(model).map_err(|e| {
            format!(
                "no server at {url}, and {e} in {} (run `cargo xtask models`)",
                models_dir.display()
            )
        })?;
        if entry.kind != ModelKind::Chat {
            return Err(format!("{model} is not a chat model"));
        }
        eprintln!("offgrid: no server at {url}; running {model} in this process");
        let loaded =
            ChatModel::load(model, &registry.weights_path(&entry)).map_err(|e| e.to_string())?;
        let engine = Engine::start(EngineConfig::default()).map_err(|e| e.to_string())?;
        Ok(Backend {
            temperature,
            kind: Kind::Local {
                engine,
                model: Arc::new(loaded),
            },
        })
    }

    /// Streams one answer to stdout; returns its text, or `None` when
    /// interrupted.
    fn answer(
        &self,
        model: &str,
        messages: &[Value],
        interrupted: &AtomicBool,
    ) -> Result<Option<String>, String> {
        match &self.kind {
            Kind::Remote(url) => stream_answer(url, model, messages, self.temperature, interrupted),
            Kind::Local { engine, model } => {
                local_answer(engine, model, messages, self.temperature, interrupted)
            }
        }
    }
}

/// Generates in-process, printing text as it comes.
fn local_answer(
    engine: &Engine,
    model: &Arc<ChatModel>,
    messages: &[Value],
    temperature: f64,
    interrupted: &AtomicBool,
) -> Result<Option<String>, String> {
    let msgs: Vec<ChatMessage> = messages
        .iter()
        .map(|m| {
            ChatMessage::new(
                m["role"].as_str().unwrap_or("user"),
                m["content"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let prompt = model
        .template
        .render(&msgs, true)
        .and_then(|text| model.tokenizer.encode(&text))
        .map_err(|e| e.to_string())?;
    let room = model.context_length().saturating_sub(prompt.len());
    if room == 0 {
        return Err(format!(
            "the conversation ({} tokens) no longer fits the model's context of {} tokens",
            prompt.len(),
            model.context_length()
        ));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let cancelled = Arc::new(AtomicBool::new(false));
    let stop = cancelled.clone();
    let gone = cancelled.clone();
    engine
        .submit(Job {
            user: "local".into(),
            model: model.clone(),
            prompt,
            params: SamplingParams {
                temperature,
                seed: std::process::id().into(),
                max_tokens: room,
                ..SamplingParams::default()
            },
            sink: Box::new(move |e| !stop.load(Ordering::SeqCst) && tx.send(e).is_ok()),
            alive: Some(Box::new(move || !gone.load(Ordering::SeqCst))),
        })
        .map_err(|e| e.to_string())?;
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
    messages: &[Value],
    temperature: f64,
    interrupted: &AtomicBool,
) -> Result<Option<String>, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = client.post(format!("{url}/v1/chat/completions")).json(
        &json!({"model": model, "messages": messages, "stream": true,
                     "temperature": temperature}),
    );
    if let Ok(key) = std::env::var("OFFGRID_API_KEY") {
        request = request.bearer_auth(key);
    }
    let response = request.send().map_err(|e| {
        format!("cannot reach the server at {url}: {e} (start it with `offgrid serve`)")
    })?;
    if !response.status().is_success() {
        let status = response.status();
        let body: Value = response.json().unwrap_or(Value::Null);
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("request failed");
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
        let chunk: Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
        if let Some(text) = chunk["choices"][0]["delta"]["content"].as_str() {
            answer.push_str(text);
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
    let messages = [json!({"role": "user", "content": prompt})];
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
    let mut history: Vec<Value> = Vec::new();
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
        history.push(json!({"role": "user", "content": text}));
        match backend.answer(model, &history, &interrupted) {
            Ok(Some(answer)) => history.push(json!({"role": "assistant", "content": answer})),
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
