// The build's entry: the widgets and their stylesheet (dist/styles.css).
import "./styles.css";

export * from "./index";
