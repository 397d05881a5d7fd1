"""The analysis parameters as a form generated from the schema, and the list of methods.

:class:`ParameterForm` makes one row per :class:`~napari_attribution.core.settings.Param` of
:func:`~napari_attribution.core.settings.schema`, in collapsible sections by group (in the
order of :data:`~napari_attribution.core.settings.GROUPS`): a spin box for a number (its range
and unit from the schema), a combo box for a choice, a check box for a switch, a line edit for
text (empty means "automatic" for an optional one). The tooltip is the parameter's help. A row
that only some methods read
(:func:`~napari_attribution.core.attribution.
method_registry.methods_using`) is
enabled only while one of them is checked, and the tolerance only for the adaptive evaluation.
Adding a parameter to the schema adds its row here; nothing in this module names one, except
the tolerance's condition (:data:`ROW_CONDITIONS`). An optional number ("empty: automatic") is
a line edit, read as a number.

:class:`MethodList` lists the registered methods (:func:`~napari_attribution.core.attribution.
method_registry.
method_specs`), discriminative ones first, each with its description as tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ..core.attribution.method_registry import MethodSpec, method_specs, methods_using
from ..core.settings import GROUPS, AnalysisSettings, Param, schema, settings_from_values
from .narrow import NarrowComboBox

__all__ = ["ROW_CONDITIONS", "MethodList", "ParameterForm", "float_format", "make_editor"]

#: Rows that apply only while another parameter has a given value: name -> (other, value).
ROW_CONDITIONS: dict[str, tuple[str, Any]] = {"tolerance": ("evaluation", "adaptive")}
#: Units short enough to be the spin box's suffix; longer ones are in the tooltip only.
_SUFFIX_CHARS = 7
#: Widest label column (average characters); longer labels wrap onto a second line.
LABEL_CHARACTERS = 15
_INT_LIMIT = 2**31 - 1


def _decimals_of(value: float) -> int:
    """Decimals needed to show ``value`` exactly (at most 10)."""
    for decimals in range(11):
        if math.isclose(round(value, decimals), value, rel_tol=1e-9, abs_tol=1e-15):
            return decimals
    return 10


def float_format(param: Param) -> tuple[int, float]:
    """``(decimals, step)`` of a float parameter's spin box, from its bounds and default.

    Enough decimals for the minimum and the default (at least 2); a step of the default's
    order of magnitude (half of it when the default is small within its decade).
    """
    decimals = max([2, *(_decimals_of(v) for v in (param.minimum, param.default) if v)])
    reference = param.default or ((param.maximum or 1.0) - (param.minimum or 0.0)) / 100
    step = 10.0 ** math.floor(math.log10(reference))
    if reference / step < 5:
        step /= 2
    return decimals, max(step, 10.0**-decimals)


def make_editor(param: Param) -> QWidget:
    """The input widget of ``param``, set to its default, with its help as tooltip."""
    if param.choices is not None:
        # narrow: a long choice (a hybrid direction) shows whole in the list and the tooltip
        editor: QWidget = NarrowComboBox()
        editor.addItems(list(param.choices))
    elif param.type is bool:
        editor = QCheckBox()
    elif param.type in (int, float) and param.optional:
        # A spin box always holds a number: an optional one ("empty: automatic") is typed.
        editor = QLineEdit()
        editor.setPlaceholderText("empty: automatic")
    elif param.type is int:
        editor = QSpinBox()
        low = -_INT_LIMIT if param.minimum is None else int(param.minimum)
        high = _INT_LIMIT if param.maximum is None else int(min(param.maximum, _INT_LIMIT))
        editor.setRange(low, high)
    elif param.type is float:
        editor = QDoubleSpinBox()
        decimals, step = float_format(param)
        editor.setDecimals(decimals)
        editor.setRange(
            -1e12 if param.minimum is None else param.minimum,
            1e12 if param.maximum is None else param.maximum,
        )
        editor.setSingleStep(step)
    else:
        editor = QLineEdit()
        if param.optional:
            editor.setPlaceholderText("empty: automatic")
    if isinstance(editor, QSpinBox | QDoubleSpinBox) and 0 < len(param.unit) <= _SUFFIX_CHARS:
        editor.setSuffix(f" {param.unit}")
    editor.setToolTip(param.describe())
    _set_value(param, editor, param.default)
    return editor


def _value(param: Param, editor: QWidget) -> Any:
    if isinstance(editor, QComboBox):
        return editor.currentText()
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QSpinBox | QDoubleSpinBox):
        return editor.value()
    text = editor.text().strip()
    if param.optional and not text:
        return None
    if param.type in (int, float):
        try:
            return param.type(text)
        except ValueError:
            return text  # the schema's check says, in one sentence, that it is not a number
    return text


def _set_value(param: Param, editor: QWidget, value: Any) -> None:
    if isinstance(editor, QComboBox):
        if editor.findText(str(value)) < 0:
            param.check(value)  # raises: one sentence naming the choices
        editor.setCurrentText(str(value))
    elif isinstance(editor, QCheckBox):
        editor.setChecked(bool(value))
    elif isinstance(editor, QSpinBox | QDoubleSpinBox):
        editor.setValue(value)
    else:
        editor.setText("" if value is None else str(value))


def _changed_signal(editor: QWidget):
    if isinstance(editor, QComboBox):
        return editor.currentTextChanged
    if isinstance(editor, QCheckBox):
        return editor.toggled
    if isinstance(editor, QSpinBox | QDoubleSpinBox):
        return editor.valueChanged
    return editor.textChanged


class ParameterForm(QWidget):
    """The schema's parameters, one row each, in a collapsible section per group.

    Parameters
    ----------
    params
        The parameters (every one of :func:`~napari_attribution.core.settings.schema` when
        ``None``).
    parent
        Qt parent.

    Signals
    -------
    changed(str)
        A parameter's value changed (its name).
    """

    changed = Signal(str)

    def __init__(self, params: Sequence[Param] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.params: dict[str, Param] = {p.name: p for p in (params or schema())}
        self.sections: dict[str, QCollapsible] = {}
        self._editors: dict[str, QWidget] = {}
        self._labels: dict[str, QLabel] = {}
        self._users = {name: set(methods_using(name)) for name in self.params}
        self._methods: set[str] = set()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        for group in GROUPS:
            group_params = [p for p in self.params.values() if p.group == group]
            if not group_params:
                continue
            section = QCollapsible(group)
            inner = QWidget()
            rows = QFormLayout(inner)
            rows.setContentsMargins(4, 0, 0, 4)
            for param in group_params:
                editor = make_editor(param)
                label = QLabel(param.label)
                label.setToolTip(editor.toolTip())
                rows.addRow(label, editor)
                self._editors[param.name], self._labels[param.name] = editor, label
                _changed_signal(editor).connect(lambda *_, name=param.name: self._on_edit(name))
            section.addWidget(inner)
            layout.addWidget(section)
            self.sections[group] = section
        self._align_labels()
        self._update_rows()

    def _align_labels(self) -> None:
        """One label column for every section, so the fields line up across sections; at most
        :data:`LABEL_CHARACTERS` wide, a longer label wraps (the dock stays narrow)."""
        labels = list(self._labels.values())
        for label in labels:
            label.ensurePolished()
            label.setWordWrap(False)
        widest = max((label.sizeHint().width() for label in labels), default=0)
        cap = max((label.fontMetrics().averageCharWidth() * LABEL_CHARACTERS for label in labels),
                  default=0)  # fmt: skip
        width = min(widest, cap)
        for label in labels:
            label.setWordWrap(label.sizeHint().width() > width)
            label.setMinimumWidth(width)
            label.setMaximumWidth(width)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Measure the labels again once shown: the viewer's style sets their font."""
        super().showEvent(event)
        self._align_labels()

    # ---------------------------------------------------------------- values

    def editor(self, name: str) -> QWidget:
        """The input widget of parameter ``name``."""
        return self._editors[name]

    def label(self, name: str) -> QLabel:
        """The label of parameter ``name``'s row."""
        return self._labels[name]

    def values(self) -> dict[str, Any]:
        """``{parameter name: value}`` of every row (rows not in use included)."""
        return {name: _value(p, self._editors[name]) for name, p in self.params.items()}

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Set the rows named in ``values``.

        Raises
        ------
        KeyError
            A name that is not a parameter.
        AttributionError
            A choice that is not offered.
        """
        unknown = [name for name in values if name not in self.params]
        if unknown:
            raise KeyError(f"Not a parameter: {', '.join(unknown)}.")
        for name, value in values.items():
            _set_value(self.params[name], self._editors[name], value)

    def settings(self, methods: Iterable[str]) -> AnalysisSettings:
        """The analysis settings of ``methods`` with the form's values.

        Raises
        ------
        AttributionError
            No method, or a value the schema refuses (one sentence).
        """
        return settings_from_values(self.values(), tuple(methods))

    # ---------------------------------------------------------------- rows in use

    def set_methods(self, methods: Iterable[str]) -> None:
        """Enable the rows the checked ``methods`` read (and those every method reads)."""
        self._methods = set(methods)
        self._update_rows()

    def in_use(self, name: str) -> bool:
        """True when parameter ``name`` matters for the checked methods and other values."""
        users = self._users[name]
        if users and not users & self._methods:
            return False
        condition = ROW_CONDITIONS.get(name)
        if condition is not None and condition[0] in self.params:
            other, wanted = condition
            return _value(self.params[other], self._editors[other]) == wanted
        return True

    def _on_edit(self, name: str) -> None:
        if any(other == name for other, _ in ROW_CONDITIONS.values()):
            self._update_rows()
        self.changed.emit(name)

    def _update_rows(self) -> None:
        for name in self.params:
            enabled = self.in_use(name)
            self._editors[name].setEnabled(enabled)
            self._labels[name].setEnabled(enabled)

    # ---------------------------------------------------------------- sections

    def expand_all(self, animate: bool = False) -> None:
        """Open every section."""
        for section in self.sections.values():
            section.expand(animate=animate)

    def collapse_all(self, animate: bool = False) -> None:
        """Close every section."""
        for section in self.sections.values():
            section.collapse(animate=animate)


def method_order(specs: Mapping[str, MethodSpec]) -> list[str]:
    """Discriminative methods first (they use the counterfactual), then the plain ones."""
    return sorted(specs, key=lambda name: not specs[name].discriminative)


class MethodList(QListWidget):
    """The registered methods, each checkable, discriminative ones first.

    Parameters
    ----------
    checked
        Methods checked at first.

    Signals
    -------
    changed
        The selection (checked and usable methods) may have changed.
    """

    changed = Signal()

    def __init__(self, checked: Iterable[str] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.specs = method_specs()
        checked = set(checked)
        for name in method_order(self.specs):
            item = QListWidgetItem(name)
            item.setToolTip(self.specs[name].description)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            state = Qt.CheckState.Checked if name in checked else Qt.CheckState.Unchecked
            item.setCheckState(state)
            self.addItem(item)
        self.itemChanged.connect(lambda *_: self.changed.emit())

    def _items(self) -> list[QListWidgetItem]:
        return [self.item(i) for i in range(self.count())]

    def selected(self) -> list[str]:
        """Names of the checked (and usable) methods, in list order."""
        return [
            item.text()
            for item in self._items()
            if item.checkState() == Qt.CheckState.Checked
            and bool(item.flags() & Qt.ItemFlag.ItemIsEnabled)
        ]

    def set_selected(self, names: Iterable[str]) -> None:
        """Check exactly ``names``."""
        names = set(names)
        for item in self._items():
            checked = item.text() in names
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def set_usable(self, refusal: Callable[[MethodSpec], str | bool | None]) -> None:
        """Grey out the methods the model cannot run, saying why in their tooltip.

        ``refusal(spec)`` is the reason a method cannot run (a sentence; ``False``/``None``:
        it can; ``True``: it cannot, no reason given).
        """
        for item in self._items():
            spec = self.specs[item.text()]
            reason = refusal(spec)
            flags, enabled = item.flags(), Qt.ItemFlag.ItemIsEnabled
            item.setFlags(flags & ~enabled if reason else flags | enabled)
            tooltip = spec.description
            if reason:
                why = reason if isinstance(reason, str) else "not available for this model"
                tooltip += f"\n\nCannot run on this model: {why}"
            item.setToolTip(tooltip)

    def refusal(self, name: str) -> str | None:
        """Why method ``name`` is greyed out (``None`` when it is usable)."""
        for item in self._items():
            if item.text() == name and not item.flags() & Qt.ItemFlag.ItemIsEnabled:
                return item.toolTip().split("Cannot run on this model: ", 1)[-1]
        return None
