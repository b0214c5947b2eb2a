// The one interface the UI talks to. `tauriBackend` calls the Rust commands through the
// generated bindings; `MemoryBackend` serves tests and previews without a window.

import { commands, type AppError, type AppInfo, type OnnxRuntimeInfo } from "./bindings";

/** How the generated bindings return a command's `Result<T, AppError>`. */
export type Result<T, E> = { status: "ok"; data: T } | { status: "error"; error: E };

export interface Backend {
  appInfo(): Promise<AppInfo>;
  onnxRuntimeInfo(): Promise<Result<OnnxRuntimeInfo, AppError>>;
}

export const tauriBackend: Backend = {
  appInfo: () => commands.appInfo(),
  onnxRuntimeInfo: () => commands.onnxRuntimeInfo(),
};

/** A backend with fixed answers, for unit tests. */
export class MemoryBackend implements Backend {
  constructor(
    private readonly app: AppInfo,
    private readonly runtime: Result<OnnxRuntimeInfo, AppError>,
  ) {}

  appInfo(): Promise<AppInfo> {
    return Promise.resolve(this.app);
  }

  onnxRuntimeInfo(): Promise<Result<OnnxRuntimeInfo, AppError>> {
    return Promise.resolve(this.runtime);
  }
}
