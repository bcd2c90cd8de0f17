"""Per-customer features at a cutoff: the layout the data offers, the feature
families registered in ``FAMILIES``, and ``compute_features`` that runs them."""

from churnkit.features import names
from churnkit.features.compute import FeatureSet, build_families, compute_features
from churnkit.features.families import FAMILIES
from churnkit.features.family import Family, Needs
from churnkit.features.layout import FeatureLayout, feature_layout
from churnkit.features.names import slug
from churnkit.features.query import FeatureQuery
from churnkit.features.spec import FeatureKind, FeatureSpec, RiskDirection

__all__ = [
    "FAMILIES",
    "Family",
    "FeatureKind",
    "FeatureLayout",
    "FeatureQuery",
    "FeatureSet",
    "FeatureSpec",
    "Needs",
    "RiskDirection",
    "build_families",
    "compute_features",
    "feature_layout",
    "names",
    "slug",
]
