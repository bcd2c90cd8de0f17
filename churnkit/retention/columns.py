"""The columns the retention stage adds to the predictions, named once.

``action`` and ``action_reason`` are part of predict's published output and live in
``churnkit.core.schema``; the rest are added here (by matching, the control group and
the budget) and read by the report and its renderers.
"""

from __future__ import annotations

# By assign_actions: the matched action and its assumed economics.
ACTION_DESCRIPTION = "action_description"
ACTION_CHANNEL = "action_channel"
ACTION_LEVER = "action_lever"
ACTION_COST = "action_cost"
ACTION_SUCCESS_RATE = "action_success_rate"
EXPECTED_SAVED_VALUE = "expected_saved_value"
# By assign_control_group.
CONTROL = "control"
# By select_within_budget.
SELECTED = "selected"
SELECTION_REASON = "selection_reason"
# By action_plan, per action (beside action, action_channel, customers, cost and
# expected_saved_value): saved value per unit spent.
RETURN_PER_UNIT = "return_per_unit"
