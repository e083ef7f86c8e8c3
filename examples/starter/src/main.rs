//! The binary: `serve`, `replay`, `runs`, `hooks`, `signal`, all from [`tether::App::run`].

fn main() -> std::process::ExitCode {
    tether_starter::app().run()
}
