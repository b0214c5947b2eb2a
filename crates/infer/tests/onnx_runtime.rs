//! Loads the real ONNX Runtime library that `scripts/setup.sh` installs into `.dokuei/`.
//! Runs in its own process: a library can be loaded into a process only once.

use dokuei_infer::{ExecutionProviderKind, ORT_VERSION, OnnxRuntime};

#[test]
fn loads_the_set_up_library_and_reports_its_version_and_providers() {
    let runtime = OnnxRuntime::load(None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(runtime.version(), ORT_VERSION);
    assert!(runtime.library_path().is_file());

    let providers = runtime.providers();
    let cpu = providers
        .iter()
        .find(|p| p.kind == ExecutionProviderKind::Cpu)
        .expect("CPU is always listed");
    assert!(cpu.compiled_in && cpu.in_library);
    // The CPU wheel from PyPI has no CUDA provider: the preferred provider must say so honestly.
    let cuda = providers
        .iter()
        .find(|p| p.kind == ExecutionProviderKind::Cuda)
        .unwrap();
    assert!(!cuda.in_library, "the CPU-only wheel claims to have CUDA");
    assert_eq!(runtime.preferred_provider(), ExecutionProviderKind::Cpu);

    // A second load returns the same runtime instead of loading twice.
    let again = OnnxRuntime::load(None).unwrap();
    assert_eq!(again.library_path(), runtime.library_path());
}

#[test]
fn asking_for_a_gpu_without_one_records_the_fallback_to_cpu() {
    let runtime = OnnxRuntime::load(None).unwrap_or_else(|e| panic!("{e}"));
    let mut builder = ort::session::Session::builder(runtime.environment()).unwrap();
    let choice = runtime.choose_provider(&mut builder, &ExecutionProviderKind::PREFERENCE);
    assert_eq!(choice.used, ExecutionProviderKind::Cpu);
    let cuda = choice
        .skipped
        .iter()
        .find(|s| s.kind == ExecutionProviderKind::Cuda)
        .expect("CUDA was asked for first and must be reported as skipped");
    assert!(cuda.reason.contains("built without it"), "{}", cuda.reason);
}
