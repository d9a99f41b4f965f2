import type { ReactNode } from "react";
import { Card } from "../ui/Card";
import { QueryError } from "../ui/QueryError";
import { Skeleton } from "../ui/Skeleton";

/**
 * An admin list's states before its rows: skeleton rows while it first loads, the failure
 * with a way to try again, or `empty` (under `testId`, as the rows would be) when there are
 * none; else `children`, the rows.
 */
export function ListStates({ query, count, loadError, empty, testId, children }: {
  query: { isPending: boolean; isError: boolean; error: unknown; refetch: () => unknown };
  count: number;
  loadError: string;
  empty: ReactNode;
  testId: string;
  children: ReactNode;
}) {
  if (query.isPending) {
    return (
      <Card className="space-y-3 p-5" aria-busy="true">
        {[0, 1, 2, 3].map((i) => <Skeleton key={i} className="h-8 w-full" />)}
      </Card>
    );
  }
  if (query.isError) {
    return <QueryError title={loadError} error={query.error} onRetry={() => void query.refetch()} />;
  }
  if (count === 0) {
    return <Card className="px-6 py-12 text-center text-sm text-slate-600" data-testid={testId}>{empty}</Card>;
  }
  return <>{children}</>;
}
