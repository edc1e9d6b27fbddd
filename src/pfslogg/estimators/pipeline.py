"""Estimators on transformed spectra (Track D): log g learned from what an upstream denoiser makes of
the noisy flux.

Class ``denoised``: a composite of one fitted *transform* (a denoiser, kind ``"transform"``, the
upstream model of role ``transform`` -- config ``estimators.<variant>.upstream.transform``; trained
once by its own cell and given here frozen) and one *estimator* part (``estimator: {class, hyper}``,
built by the registry) that is trained, validated and evaluated on the transform's output
(:class:`~pfslogg.data.views.TransformView`: the denoiser applied batch by batch, sigma passed through).
``strength``: the denoiser's s (None: its own default). The transform is kept as the part
``upstream/transform``, so the model folder stands alone: ``predict(flux, sigma)`` denoises, then predicts.

By the data-processing inequality no such model can know more about log g than the noisy spectrum
held: Track D checks it against the Bayes ceiling of the raw spectra.
"""

from ..data.views import TransformView
from .base import Composite, check_same_grid, make_part, register, upstream_key, upstream_model
from .moe import _label_of

RIDGE = {"class": "ridge", "hyper": {}}


@register
class Denoised(Composite):
    """An estimator part trained on the output of a frozen upstream transform (see the module docstring)."""

    class_id = "denoised"
    PARTS = {"estimator": ("estimator",)}
    UPSTREAM = {"transform": "the denoiser whose output the estimator learns from"}
    _state_json = ("part_names_", "transform_label_", "transform_class_")

    def __init__(self, estimator=RIDGE, strength=None, random_state=0):
        self.estimator = estimator
        self.strength = strength
        self.random_state = random_state

    @property
    def label(self):
        return f"{_label_of(self.estimator)} on denoised spectra"

    def fit(self, train, val, context):
        transform = upstream_model(context, "transform")
        check_same_grid(transform, train.wave, upstream_key(context, "transform"))
        part = make_part(self.estimator, self.random_state, f"{context.where}.estimator")
        part.fit(TransformView(train, transform, self.strength), TransformView(val, transform, self.strength),
                 context.part("estimator", where=f"{context.where}.estimator.hyper", upstream={}))
        self.parts_ = {"estimator": part, "upstream/transform": transform}
        self.part_names_ = list(self.parts_)
        self.transform_label_ = str(transform.label)
        self.transform_class_ = str(transform.class_id)
        return self

    def predict(self, flux, sigma):
        self._check_fitted()
        t = self.parts_["upstream/transform"]
        return self.parts_["estimator"].predict(t.transform(flux, sigma, strength=self.strength), sigma)

    def fitted(self):
        self._check_fitted()
        return {"transform": {"class": self.transform_class_, "label": self.transform_label_,
                              "strength": self.strength},
                "estimator": self.parts_["estimator"].fitted()}
