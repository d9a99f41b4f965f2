import type { ReactNode } from "react";

/** One column's heading: what it says, and its classes (padding, alignment, when it shows). */
export interface Column {
  label: ReactNode;
  className: string;
}

/**
 * The frame the app's data tables share: a caption for screen readers, one heading row
 * (`columns`, each `scope="col"`), and the rows, given as children, whose cells follow the
 * columns. The rows are the caller's own: the frame knows nothing of what they show.
 */
export function DataTable({ caption, columns, children, testId }: {
  caption?: string;
  columns: readonly Column[];
  children: ReactNode;
  testId?: string;
}) {
  return (
    <table className="w-full text-left text-sm" data-testid={testId}>
      {caption ? <caption className="sr-only">{caption}</caption> : null}
      <thead className="bg-slate-50 text-xs font-medium uppercase tracking-wide text-slate-500">
        <tr>
          {columns.map((column, i) => <th key={i} scope="col" className={column.className}>{column.label}</th>)}
        </tr>
      </thead>
      <tbody className="divide-y divide-slate-100">{children}</tbody>
    </table>
  );
}
