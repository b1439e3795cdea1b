"""Reads of the IAM tools, shared by the console's pages and the API: the rules the
simulator and the effective-permissions listing judge a principal by."""

from __future__ import annotations

from organizations.models import Application, Membership
from policies.evaluator import CompiledRuleSet, Principal
from policies.selectors.rules import compile_rules_for


def rules_of(subject: Membership | Application, principal: Principal) -> CompiledRuleSet:
    """The compiled rules of a membership or application, freshly read (none for owners
    and inactive principals: the evaluator decides them before any rule is read)."""
    if principal.is_owner or not principal.is_active:
        return CompiledRuleSet.empty()
    return compile_rules_for(subject)
