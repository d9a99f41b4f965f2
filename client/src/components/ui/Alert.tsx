import type { HTMLAttributes, ReactNode } from "react";
import { Icon, type IconName } from "./Icon";

type Tone = "info" | "success" | "warning" | "error";

const tones: Record<Tone, { box: string; icon: IconName; iconColor: string }> = {
  info: { box: "bg-sky-50 text-sky-900 ring-sky-200", icon: "info", iconColor: "text-sky-600" },
  success: {
    box: "bg-emerald-50 text-emerald-900 ring-emerald-200",
    icon: "check",
    iconColor: "text-emerald-600",
  },
  warning: {
    box: "bg-amber-50 text-amber-900 ring-amber-200",
    icon: "alert",
    iconColor: "text-amber-600",
  },
  error: { box: "bg-rose-50 text-rose-900 ring-rose-200", icon: "alert", iconColor: "text-rose-600" },
};

interface AlertProps extends Omit<HTMLAttributes<HTMLDivElement>, "title"> {
  tone: Tone;
  title?: ReactNode;
  children?: ReactNode;
}

export function Alert({ tone, title, children, className = "", ...rest }: AlertProps) {
  const style = tones[tone];
  return (
    <div className={`flex gap-3 rounded-xl p-4 ring-1 ring-inset ${style.box} ${className}`} {...rest}>
      <Icon name={style.icon} className={`mt-0.5 size-5 shrink-0 ${style.iconColor}`} />
      <div className="min-w-0 space-y-1 text-sm">
        {title ? <p className="font-semibold">{title}</p> : null}
        {children}
      </div>
    </div>
  );
}
