"""Deep ensembles (issue 17): one model class trained ``size`` times with different seeds.

Class ``ensemble``: ``member: {class, hyper}`` built by the registry ``size`` times, member k with the
seed ``derived_seed(random_state, "member", k)`` and its own stream of fresh training noise (a
:class:`~pfslogg.data.views.SubsetView` of every row with its own ``rng_seed``: members fitted one
after another -- or after a kill -- see the same noise whatever happened before), each selected on
the same validation view. Each member is a model folder ``members/<k>`` inside the ensemble's.

Prediction (Lakshminarayanan et al. 2017): the mean of the members' means; the per-star std is that of
the equal-weight mixture of the members' Gaussians, ``sqrt(mean_k(sd_k^2) + var_k(mean_k))`` (the
members' own noise estimate plus their disagreement). Members without a std (``gives_std`` false) give
the disagreement alone, which measures what the members do not know from the data they saw, not the
noise of a spectrum: expect it to be too narrow, and check it (``check_uncertainties``).

``predict_all`` adds each member's prediction (``member_<k>``), so the gain of averaging over a single
seed is scored on the same test rows.
"""

import logging
import time

import numpy as np

from ..errors import InputError
from .base import REGISTRY, Composite, FitContext, derived_seed, make_part, part_spec, register

log = logging.getLogger(__name__)


@register
class EnsembleEstimator(Composite):
    """``size`` copies of ``member`` with different seeds; mean and mixture std of their predictions."""

    class_id = "ensemble"
    gives_std = True
    PARTS = {"member": ("estimator",)}
    _state_json = ("part_names_", "member_gives_std_")

    def __init__(self, member={"class": "mlp", "hyper": {}}, size=5, random_state=0):
        self.member = member
        self.size = size
        self.random_state = random_state

    @classmethod
    def check_hyper(cls, hyper, where):
        super().check_hyper(hyper, where)
        size = hyper.get("size", cls.hyper_default("size"))
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
            raise InputError(f"{where}.size: got {size!r}, expected an integer >= 2 (members of the ensemble)")

    @property
    def label(self):
        class_id, _ = part_spec(self.member, "member")
        return f"{getattr(REGISTRY.get(class_id), 'label', None) or class_id} ensemble ({self.size})"

    def fit(self, train, val, context=None):
        from ..data.views import SubsetView

        ctx = context or FitContext()
        where, rs = ctx.where, self.random_state
        type(self).check_hyper({k: v for k, v in self.get_params().items() if k != "random_state"}, where)
        rows = np.arange(train.n)
        self.parts_ = {}
        for k in range(int(self.size)):
            t0 = time.perf_counter()
            member = make_part(self.member, derived_seed(rs, "member", k), f"{where}.member")
            member.fit(SubsetView(train, rows=rows, rng_seed=derived_seed(rs, "noise", k), where=f"{where}.member"),
                       val, ctx.part(f"members/{k}", where=f"{where}.member.hyper"))
            self.parts_[f"members/{k}"] = member
            log.info("ensemble member %d/%d (%s): fitted in %.1f s", k + 1, self.size, member.class_id,
                     time.perf_counter() - t0)
        self.part_names_ = list(self.parts_)
        self.member_gives_std_ = bool(self.parts_["members/0"].gives_std)
        return self

    def members(self):
        self._check_fitted()
        return [self.parts_[name] for name in self.part_names_]

    def _member_predictions(self, flux, sigma):
        """(means (K, B), sds (K, B) or None) of the members."""
        if self.member_gives_std_:
            pairs = [m.predict(flux, sigma, return_std=True) for m in self.members()]
            return np.stack([np.asarray(p[0], float) for p in pairs]), np.stack([np.asarray(p[1], float) for p in pairs])
        return np.stack([np.asarray(m.predict(flux, sigma), float) for m in self.members()]), None

    @staticmethod
    def _combine(means, sds):
        mean = means.mean(0)
        var = means.var(0)                        # the members' disagreement (ddof 0: the mixture's)
        if sds is not None:
            var = var + (sds ** 2).mean(0)        # plus their own noise estimates
        return mean, np.sqrt(var)

    def predict(self, flux, sigma=None, return_std=False):
        """The members' mean log g (B,); ``return_std``: also the mixture's std (module docstring)."""
        mean, std = self._combine(*self._member_predictions(flux, sigma))
        return (mean, std) if return_std else mean

    def predict_all(self, flux, sigma, truth=None):
        from ..uncertainty import STD

        means, sds = self._member_predictions(flux, sigma)
        mean, std = self._combine(means, sds)
        return {"": mean, STD: std, **{f"member_{k}": means[k] for k in range(len(means))}}

    def fitted(self):
        self._check_fitted()
        return {"size": int(self.size), "member_gives_std": self.member_gives_std_,
                "members": [m.fitted() for m in self.members()]}
