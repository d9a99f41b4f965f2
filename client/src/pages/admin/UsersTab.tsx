import { useId, useState } from "react";
import { Link, useLocation } from "wouter";
import { ADMIN_USERS_LIMIT, useAdminUsers } from "../../api/admin";
import type { AdminUser } from "../../api/types";
import { Badge } from "../../components/ui/Badge";
import { Card } from "../../components/ui/Card";
import { DataTable } from "../../components/ui/DataTable";
import { Icon } from "../../components/ui/Icon";
import { Spinner } from "../../components/ui/Spinner";
import { useI18n } from "../../i18n/useI18n";
import { formatNumber } from "../../lib/format";
import { useDebounced } from "../../lib/useDebounced";
import { ListStates } from "../../components/admin/ListStates";

const SEARCH_DELAY_MS = 250;

export function UsersTab() {
  const i18n = useI18n();
  const { t } = i18n;
  const searchId = useId();
  const [text, setText] = useState("");
  const query = useDebounced(text.trim(), SEARCH_DELAY_MS);
  const users = useAdminUsers(query);
  const rows = users.data ?? [];

  return (
    <section aria-labelledby="admin-users-title">
      <h2 id="admin-users-title" className="sr-only">{t("admin.tab.users")}</h2>
      <form role="search" onSubmit={(event) => event.preventDefault()} className="mb-4 max-w-md">
        <label htmlFor={searchId} className="block text-sm font-medium text-slate-700">{t("admin.users.search")}</label>
        <div className="relative mt-1.5">
          <Icon name="search" className="pointer-events-none absolute left-3 top-1/2 size-4 -translate-y-1/2 text-slate-400" />
          <input
            id={searchId}
            type="search"
            value={text}
            onChange={(event) => setText(event.target.value)}
            placeholder={t("admin.users.searchPlaceholder")}
            autoComplete="off"
            spellCheck={false}
            className="block h-11 w-full rounded-lg border border-slate-300 bg-white pl-9 pr-10 text-slate-900 shadow-sm placeholder:text-slate-400 focus:border-brand-500"
          />
          {users.isFetching && !users.isPending ? (
            <Spinner className="absolute right-3 top-1/2 size-4 -translate-y-1/2 text-brand-600" />
          ) : null}
        </div>
      </form>

      <ListStates query={users} count={rows.length} loadError={t("admin.users.loadError")} testId="admin-users"
        empty={query ? t("admin.users.noMatch", { query }) : t("admin.users.none")}>
        <Card className="overflow-x-auto" data-testid="admin-users">
          <DataTable caption={t("admin.users.caption")} columns={[
            { label: t("admin.users.col.user"), className: "px-3 py-3 sm:px-4" },
            { label: t("admin.users.col.email"), className: "hidden px-3 py-3 sm:px-4 md:table-cell" },
            { label: t("admin.users.col.balance"), className: "hidden px-3 py-3 sm:px-4 text-right sm:table-cell" },
            { label: t("admin.users.col.reserved"), className: "hidden px-3 py-3 sm:px-4 text-right sm:table-cell" },
            { label: t("admin.users.col.available"), className: "px-3 py-3 sm:px-4 text-right" },
            { label: t("admin.users.col.spent"), className: "px-3 py-3 sm:px-4 text-right" },
          ]}>
            {rows.map((user) => <UserRow key={user.id} user={user} />)}
          </DataTable>
        </Card>
        {rows.length >= ADMIN_USERS_LIMIT ? (
          <p className="mt-3 text-xs text-slate-500">{t("admin.users.limited", { n: ADMIN_USERS_LIMIT })}</p>
        ) : null}
      </ListStates>
    </section>
  );
}

function UserRow({ user }: { user: AdminUser }) {
  const { t, locale } = useI18n();
  const [, navigate] = useLocation();
  const href = `/admin/users/${user.id}`;
  return (
    // The whole row opens the user; the name is the link keyboards and screen readers use.
    <tr className="cursor-pointer align-top hover:bg-slate-50" data-testid="admin-user-row" onClick={() => navigate(href)}>
      <td className="px-3 py-3 sm:px-4">
        <div className="flex flex-wrap items-center gap-1.5">
          <Link href={href} className="font-medium text-brand-700 hover:underline" onClick={(event) => event.stopPropagation()}>
            {user.username}
          </Link>
          {user.is_admin ? <Badge tone="brand">{t("admin.users.adminBadge")}</Badge> : null}
        </div>
        <span className="block max-w-[9rem] truncate text-xs text-slate-500 sm:max-w-none md:hidden">{user.email}</span>
      </td>
      <td className="hidden px-3 py-3 sm:px-4 text-slate-600 md:table-cell">{user.email}</td>
      <td className="hidden px-3 py-3 sm:px-4 text-right tabular-nums text-slate-700 sm:table-cell">{formatNumber(user.balance, locale)}</td>
      <td className="hidden px-3 py-3 sm:px-4 text-right tabular-nums text-slate-500 sm:table-cell">{formatNumber(user.reserved, locale)}</td>
      <td className="px-3 py-3 sm:px-4 text-right font-semibold tabular-nums text-slate-900">{formatNumber(user.available, locale)}</td>
      <td className="px-3 py-3 sm:px-4 text-right tabular-nums text-slate-600">{formatNumber(user.spent, locale)}</td>
    </tr>
  );
}
