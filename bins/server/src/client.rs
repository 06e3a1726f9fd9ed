//! `offgrid run` and `offgrid chat`: a terminal client for a running server.
//! Answers stream token by token (SSE); Ctrl-C drops the stream, which ends
//! the generation on the server, and returns to the prompt (chat) or exits
//! (run). An API key can be given in `OFFGRID_API_KEY`.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

/// Streams one chat completion to stdout; returns the answer text, or
/// `None` when interrupted.
fn stream_answer(
    url: &str,
    model: &str,
    messages: &[Value],
    interrupted: &AtomicBool,
) -> Result<Option<String>, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = client
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": model, "messages": messages, "stream": true}));
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
pub(crate) fn run(url: &str, model: &str, prompt: Option<String>) -> ExitCode {
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
    match stream_answer(url, model, &messages, &interrupted) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("offgrid: {e}");
            ExitCode::from(1)
        }
    }
}

/// `offgrid chat`.
pub(crate) fn chat(url: &str, model: &str) -> ExitCode {
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
        match stream_answer(url, model, &history, &interrupted) {
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
