// Text shown to users about the system, kept apart from the components so it is unit-tested.

import type { ExecutionProviderKind, LibrarySource, ProviderStatus } from "./bindings";

const GPU_PROVIDERS: readonly ExecutionProviderKind[] = ["CUDA", "TensorRT", "DirectML", "CoreML"];

/** "GPU (CUDA)" or "CPU": what a radiologist needs to know about where a model runs. */
export function describeProvider(kind: ExecutionProviderKind): string {
  return GPU_PROVIDERS.includes(kind) ? `GPU (${kind})` : "CPU";
}

/** Why a provider is or is not usable, in one short phrase. */
export function providerAvailability(p: ProviderStatus): string {
  if (!p.compiled_in) return "not in this build";
  if (!p.in_library) return "not in the ONNX Runtime library";
  return "available";
}

export function describeLibrarySource(source: LibrarySource): string {
  switch (source) {
    case "explicit":
      return "set by DOKUEI_ORT_LIB or a setting";
    case "next_to_executable":
      return "next to the application";
    case "project_setup":
      return "installed by scripts/setup.sh";
  }
}
