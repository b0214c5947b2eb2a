// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    // Before GTK starts: DOKUEI_RENDERING=software (or auto without a GPU render node) turns
    // WebKit's DMA-BUF renderer off and draws the viewer on the CPU (README, "Rendering
    // without a GPU").
    if let Err(e) = dokuei_review::system::apply_rendering() {
        eprintln!("dokuei: {e}");
        return std::process::ExitCode::FAILURE;
    }
    match dokuei_app::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dokuei: the window could not start: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
