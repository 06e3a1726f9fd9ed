//! How both binaries end: clap's mistakes and a command's failure are one
//! line on stderr, prefixed with the binary's name, and an exit code.

use std::fmt::Display;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

/// Exit code for usage and configuration errors.
pub const EXIT_USAGE: u8 = 2;

/// A command that failed: the exit code and the one line that says why.
#[derive(Debug)]
pub struct Failure {
    /// The process's exit code.
    pub code: u8,
    /// What went wrong, printed after the binary's name.
    pub message: String,
}

impl Failure {
    /// A failure with exit code `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// A usage or configuration error (exit code [`EXIT_USAGE`]).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new(EXIT_USAGE, message)
    }

    /// Prints `bin: message` on stderr and gives the exit code.
    pub fn report(&self, bin: &str) -> ExitCode {
        eprintln!("{bin}: {}", self.message);
        ExitCode::from(self.code)
    }
}

/// Any error is a failure with exit code 1 and its `Display` text.
impl<E: Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::new(1, e.to_string())
    }
}

/// Parses the process's arguments into `C`. Help and version are printed
/// as clap prints them, with exit code 0; any other mistake is the first
/// line of clap's message (not its usage block), after the command's name,
/// with exit code [`EXIT_USAGE`].
pub fn parse<C: Parser>() -> Result<C, ExitCode> {
    C::try_parse().map_err(|e| {
        let informational = matches!(
            e.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        if informational {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Failure::usage(one_line(&e.to_string())).report(C::command().get_name())
    })
}

/// The first line of a clap error, without its `error: ` prefix.
fn one_line(text: &str) -> &str {
    text.lines()
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser, Debug)]
    #[command(name = "demo")]
    struct Demo {
        #[arg(long)]
        count: u8,
    }

    #[test]
    fn a_clap_error_becomes_its_first_line() {
        let err = Demo::try_parse_from(["demo", "--count", "x"]).expect_err("not a number");
        let text = err.to_string();
        let line = super::one_line(&text);
        assert!(line.starts_with("invalid value 'x' for '--count"), "{line}");
        assert_eq!(super::one_line(""), "invalid arguments");
    }

    #[test]
    fn errors_are_exit_code_1_and_usage_is_2() {
        let f = super::Failure::from("disk full");
        assert_eq!((f.code, f.message.as_str()), (1, "disk full"));
        assert_eq!(super::Failure::usage("bad").code, super::EXIT_USAGE);
    }
}
