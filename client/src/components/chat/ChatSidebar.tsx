import { useState } from "react";
import { Link } from "wouter";
import { useChats } from "../../api/queries";
import { useI18n } from "../../i18n/useI18n";
import { formatDateTime } from "../../lib/format";
import { errorText } from "../../lib/errorText";
import { Button } from "../ui/Button";
import { Icon } from "../ui/Icon";
import { Skeleton } from "../ui/Skeleton";

/**
 * The list of chats. On phones it folds behind a toggle above the thread;
 * from the `md` breakpoint it is a sidebar.
 */
export function ChatSidebar({ activeId, onNewChat }: { activeId: string | undefined; onNewChat: () => void }) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const chats = useChats();
  const [open, setOpen] = useState(false);
  // Most recently active first (ISO timestamps compare as strings).
  const list = [...(chats.data ?? [])].sort((a, b) => b.updated_at.localeCompare(a.updated_at));
  const active = list.find((chat) => String(chat.id) === activeId);

  return (
    <aside className="border-b border-slate-200 bg-white md:sticky md:top-[57px] md:h-[calc(100dvh-57px)] md:w-72 md:shrink-0 md:overflow-y-auto md:border-b-0 md:border-r">
      <div className="flex items-center gap-2 px-4 py-3">
        <button
          type="button"
          className="flex min-w-0 flex-1 items-center gap-1.5 rounded-md text-left text-sm font-semibold text-slate-800 md:hidden"
          aria-expanded={open}
          aria-controls="chat-list"
          onClick={() => setOpen((value) => !value)}
        >
          <span className="truncate">{active ? (active.title || t("chat.untitled")) : t("chat.showList")}</span>
          <span className="shrink-0 text-slate-400">({list.length})</span>
          <Icon name="chevronDown" className={`size-4 shrink-0 transition-transform ${open ? "rotate-180" : ""}`} />
        </button>
        <h2 className="hidden flex-1 text-sm font-semibold text-slate-800 md:block">{t("chat.listTitle")}</h2>
        <Button size="sm" variant="secondary" icon={<Icon name="plus" className="size-4" />} onClick={() => { setOpen(false); onNewChat(); }}>
          {t("chat.new")}
        </Button>
      </div>
      <nav id="chat-list" aria-label={t("chat.listTitle")} className={`${open ? "block" : "hidden"} px-2 pb-3 md:block`}>
        {chats.isPending ? (
          <div className="space-y-2 px-2" aria-busy="true">
            {[0, 1, 2].map((i) => <Skeleton key={i} className="h-12 w-full" />)}
          </div>
        ) : chats.isError ? (
          <p className="px-2 text-sm text-rose-700">{errorText(i18n, chats.error)}</p>
        ) : list.length === 0 ? (
          <p className="px-2 py-4 text-sm text-slate-500">{t("chat.emptyList")}</p>
        ) : (
          <ul className="space-y-0.5">
            {list.map((chat) => {
              const isActive = String(chat.id) === activeId;
              return (
                <li key={String(chat.id)}>
                  <Link
                    href={`/chat/${chat.id}`}
                    onClick={() => setOpen(false)}
                    aria-current={isActive ? "page" : undefined}
                    className={[
                      "block rounded-lg px-3 py-2 transition-colors",
                      isActive ? "bg-brand-50 text-brand-900" : "text-slate-700 hover:bg-slate-100",
                    ].join(" ")}
                  >
                    <span className="block truncate text-sm font-medium">{chat.title || t("chat.untitled")}</span>
                    <span className="block truncate text-xs text-slate-400">
                      {chat.last_message_preview || formatDateTime(chat.updated_at, locale)}
                    </span>
                  </Link>
                </li>
              );
            })}
          </ul>
        )}
      </nav>
    </aside>
  );
}
