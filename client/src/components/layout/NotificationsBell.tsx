import { useEffect, useId, useRef, useState } from "react";
import { Link } from "wouter";
import { useMarkNotificationsRead, useNotifications, type AppNotification } from "../../api/billing";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { formatDateTime } from "../../lib/format";
import { Icon } from "../ui/Icon";
import { Spinner } from "../ui/Spinner";

/** A link a notification carries (e.g. "finish the payment"), kept to http(s) and same-site paths. */
function actionLink(item: AppNotification): string | null {
  const url = item.data.action_url ?? item.data.url;
  if (typeof url !== "string") return null;
  if (url.startsWith("/") && !url.startsWith("//")) return url;
  return /^https?:\/\//.test(url) ? url : null;
}

/**
 * The bell in the header: the unread count (asked for every minute and on focus), and a
 * panel listing the latest notifications with "mark as read".
 */
export function NotificationsBell() {
  const i18n = useI18n();
  const { t, plural, locale } = i18n;
  const notifications = useNotifications();
  const markRead = useMarkNotificationsRead();
  const [open, setOpen] = useState(false);
  const panelId = useId();
  const rootRef = useRef<HTMLDivElement>(null);
  const unread = notifications.data?.unread ?? 0;
  const items = notifications.data?.items ?? [];

  useEffect(() => {
    if (!open) return;
    const onPointer = (event: MouseEvent) => {
      if (rootRef.current && !rootRef.current.contains(event.target as Node)) setOpen(false);
    };
    document.addEventListener("mousedown", onPointer);
    return () => document.removeEventListener("mousedown", onPointer);
  }, [open]);

  const toggle = () => {
    // Opening always shows the latest, not the last poll's.
    if (!open) void notifications.refetch();
    setOpen(!open);
  };

  return (
    <div ref={rootRef} className="relative"
      onKeyDown={(event) => {
        if (event.key === "Escape" && open) {
          event.stopPropagation();
          setOpen(false);
        }
      }}>
      <button
        type="button"
        data-testid="notifications-bell"
        aria-expanded={open}
        aria-controls={panelId}
        aria-label={unread > 0 ? plural("notifications.open", unread) : t("notifications.title")}
        title={t("notifications.title")}
        onClick={toggle}
        className="relative inline-flex h-9 items-center rounded-lg px-2.5 text-slate-600 hover:bg-slate-100 hover:text-slate-900"
      >
        <Icon name="bell" className="size-5" />
        {unread > 0 ? (
          <span data-testid="notifications-unread" aria-hidden="true"
            className="absolute right-0.5 top-0.5 grid min-w-4 place-items-center rounded-full bg-rose-600 px-1 text-[10px] font-semibold leading-4 text-white tabular-nums">
            {unread > 99 ? "99+" : unread}
          </span>
        ) : null}
      </button>
      {open ? (
        <div id={panelId} role="dialog" aria-label={t("notifications.title")}
          className="absolute right-0 z-40 mt-2 w-[min(22rem,calc(100vw-2rem))] animate-fade-in overflow-hidden rounded-2xl bg-white shadow-xl ring-1 ring-slate-200">
          <div className="flex items-center justify-between gap-2 border-b border-slate-100 px-4 py-3">
            <h2 className="text-sm font-semibold text-slate-900">{t("notifications.title")}</h2>
            {unread > 0 ? (
              <button type="button" className="text-xs font-medium text-brand-700 hover:underline disabled:opacity-50"
                disabled={markRead.isPending} onClick={() => markRead.mutate(undefined)}>
                {t("notifications.markAll")}
              </button>
            ) : null}
          </div>
          {notifications.isPending ? (
            <div className="flex justify-center py-8 text-brand-600"><Spinner /></div>
          ) : notifications.isError ? (
            <p role="alert" className="px-4 py-6 text-sm text-rose-700">
              {t("notifications.loadError")} {errorText(i18n, notifications.error)}
            </p>
          ) : items.length === 0 ? (
            <p className="px-4 py-8 text-center text-sm text-slate-500">{t("notifications.empty")}</p>
          ) : (
            <ul className="max-h-96 divide-y divide-slate-100 overflow-y-auto" data-testid="notifications-list">
              {items.map((item) => {
                const link = actionLink(item);
                const isUnread = item.read_at === null;
                return (
                  <li key={item.id} data-testid="notification" data-unread={isUnread ? "true" : "false"}
                    className={`px-4 py-3 text-sm ${isUnread ? "bg-brand-50/60" : ""}`}>
                    <div className="flex items-start gap-2">
                      {isUnread ? (
                        <span className="mt-1.5 size-2 shrink-0 rounded-full bg-brand-600">
                          <span className="sr-only">{t("notifications.unread")}</span>
                        </span>
                      ) : <span className="size-2 shrink-0" aria-hidden="true" />}
                      <div className="min-w-0 flex-1">
                        <p className="font-medium text-slate-900">{item.title}</p>
                        {item.body ? <p className="mt-0.5 text-slate-600">{item.body}</p> : null}
                        <p className="mt-1 flex flex-wrap items-center gap-x-3 gap-y-1 text-xs text-slate-500">
                          <span>{formatDateTime(item.created_at, locale)}</span>
                          {link ? (
                            link.startsWith("/") ? (
                              <Link href={link} className="font-medium text-brand-700 hover:underline"
                                onClick={() => setOpen(false)}>{t("notifications.open_link")}</Link>
                            ) : (
                              <a href={link} className="font-medium text-brand-700 hover:underline">{t("notifications.open_link")}</a>
                            )
                          ) : null}
                          {isUnread ? (
                            <button type="button" className="font-medium text-brand-700 hover:underline"
                              disabled={markRead.isPending} onClick={() => markRead.mutate([item.id])}>
                              {t("notifications.markRead")}
                            </button>
                          ) : null}
                        </p>
                      </div>
                    </div>
                  </li>
                );
              })}
            </ul>
          )}
          <div className="border-t border-slate-100 px-4 py-2.5 text-right">
            <Link href="/settings" className="text-xs font-medium text-brand-700 hover:underline"
              onClick={() => setOpen(false)}>
              {t("notifications.settings")}
            </Link>
          </div>
        </div>
      ) : null}
    </div>
  );
}
