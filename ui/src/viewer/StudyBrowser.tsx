// The study browser: patient, study, series with modality, description, date, image count and
// a thumbnail; the files that could not be read and those read with a warning (tolerated
// deviations, duplicate copies), in a collapsible list.

import type { StudyTree } from "../bindings";
import { thumbUrl } from "./imageId";
import { dicomDate, personName } from "./overlay";

export interface Selection {
  series: number;
  stack: number;
}

interface Props {
  generation: number;
  tree: StudyTree;
  selected: Selection | null;
  onSelect: (s: Selection) => void;
}

export function StudyBrowser({ generation, tree, selected, onSelect }: Props) {
  const refused = tree.problems.filter((p) => p.refused).length;
  const warnings = tree.problems.length - refused;
  return (
    <nav className="browser" aria-label="Study browser">
      {tree.studies.map((study, i) => (
        <section key={i} className="study">
          <header>
            <div className="patient">{personName(study.patient_name)}</div>
            <div className="muted">
              {study.patient_id} · {dicomDate(study.date)}
            </div>
            <div>{study.description || "(no study description)"}</div>
          </header>
          <ul className="series-list">
            {study.series.flatMap((s) =>
              s.stacks.map((st) => {
                const isSelected = selected?.series === s.key && selected.stack === st.index;
                return (
                  <li key={`${s.key}-${st.index}`}>
                    <button
                      type="button"
                      className={`series${isSelected ? " selected" : ""}`}
                      data-testid={`series-${s.key}-${st.index}`}
                      aria-pressed={isSelected}
                      onClick={() => {
                        onSelect({ series: s.key, stack: st.index });
                      }}
                    >
                      <img className="thumb" src={thumbUrl(generation, s.key)} alt="" width={64} height={64} />
                      <span className="series-text">
                        <strong>
                          {s.modality} {s.number ?? ""}
                        </strong>{" "}
                        {s.description || "(no description)"}
                        <br />
                        <span className="muted">
                          {st.slices} image{st.slices === 1 ? "" : "s"} · {st.columns}×{st.rows}
                          {s.stacks.length > 1 ? ` · ${st.label}` : ""}
                        </span>
                        {st.warnings.map((w) => (
                          <span key={w} className="warning">
                            {w}
                          </span>
                        ))}
                      </span>
                    </button>
                  </li>
                );
              }),
            )}
          </ul>
        </section>
      ))}
      <details className="problems" open={tree.problems.length > 0 && tree.problems.length <= 5} data-testid="problems">
        <summary>
          {refused} file{refused === 1 ? "" : "s"} could not be read
          {warnings > 0 ? ` · ${warnings} read with a warning` : ""} · {tree.files_scanned} looked at
          {tree.skipped > 0 ? ` · ${tree.skipped} not images` : ""}
        </summary>
        <ul>
          {tree.problems.map((p) => (
            <li key={p.file}>
              <code>{p.file}</code>
              <div className="muted">
                {p.refused ? "" : "warning · "}
                {p.kind}: {p.reason}
              </div>
            </li>
          ))}
        </ul>
      </details>
    </nav>
  );
}
