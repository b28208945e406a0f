/**
 * Colour for people (`node:util` `styleText`), on unless `NO_COLOR` is set (https://no-color.org).
 *
 * @module
 */
import { styleText } from "node:util";

type Style = Parameters<typeof styleText>[0];

/** `text` in `style`, or as it is under `NO_COLOR`. */
export function paint(style: Style, text: string): string {
  if (process.env.NO_COLOR) return text;
  return styleText(style, text, { validateStream: false });
}

/** The colour of a task or agent state, as the dashboard draws it. */
export function stateStyle(state: string): Style {
  switch (state) {
    case "alive":
    case "running":
      return "green";
    case "suspect":
    case "starting":
    case "restarting":
      return "yellow";
    case "crashed":
    case "failed":
    case "lost":
    case "dead":
      return "red";
    case "done":
      return "blue";
    default:
      return "gray";
  }
}
