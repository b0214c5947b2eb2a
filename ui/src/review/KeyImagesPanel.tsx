// Key images: the reader marks the slice on screen (with a note) as a key image of the study;
// each mark and unmark is a ledger row, and the study's key images are written as a DICOM Key
// Object Selection document with its results.

import { useCallback, useEffect, useState } from "react";
import type { Backend } from "../backend";
import type { AppError, KeyImageView } from "../bindings";

interface Props {
  api: Backend;
  /** The stack on screen (null: none). */
  target: { series: number; stack: number } | null;
  readerId: number | null;
  signedOff: boolean;
  /** Why marking is not possible now, beyond the rest. */
  blocked: string | null;
  /** Bumped when the study's record may have changed (a sign-off), to list again. */
  revision: string;
  /** The image on screen, or why what is on screen is not an image of the stack (an MPR
   * plane). */
  currentSlice: () => number | { why: string } | null;
  goTo: (slice: number) => void;
}

export function KeyImagesPanel({ api, target, readerId, signedOff, blocked, revision, currentSlice, goTo }: Props) {
  const [list, setList] = useState<KeyImageView[]>([]);
  const [note, setNote] = useState("");
  const [error, setError] = useState<AppError | null>(null);
  const series = target?.series ?? null;
  const stack = target?.stack ?? null;

  const load = useCallback(async () => {
    if (series === null || stack === null) return [];
    const r = await api.keyImages(series, stack);
    return r.status === "ok" ? r.data : [];
  }, [api, series, stack]);

  useEffect(() => {
    let live = true;
    void load().then((l) => {
      if (live) setList(l);
    });
    return () => {
      live = false;
    };
  }, [load, revision]);

  const mark = async (slice: number, mark: boolean, text: string) => {
    if (series === null || stack === null || readerId === null) return;
    const r = await api.markKeyImage(series, stack, slice, readerId, text, mark);
    if (r.status === "error") {
      setError(r.error);
      return;
    }
    setError(null);
    setList(r.data);
    if (mark) setNote("");
  };

  const why = readerId === null ? "Choose a reader profile first" : signedOff ? "The study is signed off" : target === null ? "Show a series first" : blocked;
  return (
    <section className="key-images" data-testid="key-images">
      <h3>Key images</h3>
      <div className="row">
        <input
          type="text"
          placeholder="Note (optional)"
          value={note}
          maxLength={1024}
          onChange={(e) => {
            setNote(e.target.value);
          }}
          data-testid="key-image-note"
          disabled={why !== null}
        />
        <button
          type="button"
          disabled={why !== null}
          title={why ?? "Mark the image on screen as a key image"}
          onClick={() => {
            const slice = currentSlice();
            if (typeof slice === "number") void mark(slice, true, note);
            else if (slice !== null) setError({ code: "invalid_argument", message: `Not marked: ${slice.why}.` });
          }}
          data-testid="mark-key-image"
        >
          Mark
        </button>
      </div>
      {error && (
        <p className="error" role="alert" data-testid="key-image-error">
          {error.message}
        </p>
      )}
      {list.length === 0 ? (
        <p className="muted">None marked.</p>
      ) : (
        <ol data-testid="key-image-list">
          {list.map((k) => (
            <li key={k.id}>
              <button
                type="button"
                className="link"
                disabled={k.slice === null || k.slice === undefined}
                onClick={() => {
                  if (k.slice !== null && k.slice !== undefined) goTo(k.slice);
                }}
                title={k.slice === null || k.slice === undefined ? "In another series or stack" : "Show it"}
              >
                {k.slice !== null && k.slice !== undefined ? `Im ${k.slice + 1}` : "other series"}
                {k.frame ? ` (frame ${k.frame})` : ""}
              </button>{" "}
              {k.note && <span>{k.note} </span>}
              <span className="muted">{k.reader}</span>{" "}
              {!signedOff && readerId !== null && k.slice !== null && k.slice !== undefined && (
                <button
                  type="button"
                  className="link"
                  aria-label={`Unmark image ${k.slice + 1}`}
                  onClick={() => {
                    if (k.slice !== null && k.slice !== undefined) void mark(k.slice, false, "");
                  }}
                >
                  ×
                </button>
              )}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
