"""Confusion matrix and per-class accuracy of a classifier, written to a run directory.

    confusion_matrix.csv       rows: true class, columns: predicted class (counts)
    confusion_matrix.png       the same, row-normalised, as a heat map
    per_class_accuracy.json    recall of each class (correct / examples of that class)
"""

import csv
import json
import os

import numpy as np


def confusion_matrix(labels, predictions, num_classes):
    """Counts `(num_classes, num_classes)`: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return matrix


def per_class_accuracy(matrix, label_names):
    totals = matrix.sum(axis=1)
    return {
        name: (round(float(matrix[i, i] / totals[i]), 6) if totals[i] else None) for i, name in enumerate(label_names)
    }


def plot_confusion_matrix(matrix, label_names, path, title="Confusion matrix"):
    """Writes a row-normalised heat map with the counts printed in each cell."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    from matplotlib.figure import Figure

    totals = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fractions = matrix / totals
    size = max(4.0, 0.6 * len(label_names) + 2)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.add_subplot()
    image = axes.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="fraction of the true class")
    ticks = np.arange(len(label_names))
    axes.set_xticks(ticks, labels=label_names, rotation=45, ha="right")
    axes.set_yticks(ticks, labels=label_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    accuracy = np.trace(matrix) / max(1, matrix.sum())
    axes.set_title(f"{title} (accuracy {accuracy:.2%}, {matrix.sum()} examples)")
    if len(label_names) <= 30:
        for i in range(len(label_names)):
            for j in range(len(label_names)):
                if matrix[i, j]:
                    color = "white" if fractions[i, j] > 0.5 else "black"
                    axes.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7, color=color)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def write_classification_report(labels, predictions, label_names, run_dir, title="Confusion matrix"):
    """Writes the three report files into `run_dir`; returns the per-class accuracy."""
    matrix = confusion_matrix(labels, predictions, len(label_names))
    with open(os.path.join(run_dir, "confusion_matrix.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["true \\ predicted", *label_names])
        for name, row in zip(label_names, matrix):
            writer.writerow([name, *row.tolist()])
    accuracy = per_class_accuracy(matrix, label_names)
    with open(os.path.join(run_dir, "per_class_accuracy.json"), "w", encoding="utf-8") as f:
        json.dump(accuracy, f, indent=2)
        f.write("\n")
    plot_confusion_matrix(matrix, label_names, os.path.join(run_dir, "confusion_matrix.png"), title)
    return accuracy
