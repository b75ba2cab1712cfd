"""The four heads' losses, masked: a row without a head's label contributes nothing to that head.

Each is a small pure function of logits, targets and a (B,) boolean mask; with an empty mask it returns a zero that
still belongs to the graph (so a batch without any label of one head back-propagates nothing through it).
"""

import torch
import torch.nn.functional as F

from rewardmodels.ml.losses import cost_loss


def _zero(logits: torch.Tensor) -> torch.Tensor:
    return logits.sum() * 0.0


def masked_binary_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE over the rows that carry the label. logits, targets: (B,); mask: (B,) bool. Returns a scalar."""
    if not bool(mask.any()):
        return _zero(logits)
    return F.binary_cross_entropy_with_logits(logits[mask], targets[mask].float())


def masked_multilabel_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, *,
                           pos_weight: float = 1.0) -> torch.Tensor:
    """Per-category BCE, mean over the labelled rows and the K categories. logits, targets: (B, K); mask: (B,) bool.
    ``pos_weight`` weighs positive labels (most categories are rare: without it the head learns "never")."""
    if not bool(mask.any()) or logits.shape[-1] == 0:
        return _zero(logits)
    weight = torch.tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits[mask], targets[mask].float(), pos_weight=weight)


def masked_refusal_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """3-class cross-entropy over the rows with a refusal label. logits: (B, 3); targets: (B,) class ids (any value
    where unlabelled); mask: (B,) bool."""
    if not bool(mask.any()):
        return _zero(logits)
    return F.cross_entropy(logits[mask], targets[mask].long())


def harm_pair_loss(harm_more: torch.Tensor, harm_safer: torch.Tensor) -> torch.Tensor:
    """-log σ(h_more - h_safer), mean over the pairs: the cost model's pairwise term (rewardmodels.ml.cost_loss with
    no known signs) on response_harmful logits. harm_more, harm_safer: (P,)."""
    if harm_more.numel() == 0:
        return _zero(harm_more)
    zeros = torch.zeros_like(harm_more)
    return cost_loss(harm_more, harm_safer, zeros, zeros)


def safety_loss(logits: dict, targets: dict, *, weights: dict[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the four masked head losses for one batch of rows; also each term's value (for logs).

    logits: the model's dict; targets: {"prompt_harmful": (B,), "prompt_harmful_mask": (B,), "categories": (B, K),
    "categories_mask": (B,), "response_refusal": (B,), "response_refusal_mask": (B,), "response_harmful": (B,),
    "response_harmful_mask": (B,)}; weights: per head, plus "category_pos_weight".
    """
    terms = {
        "prompt_harmful": masked_binary_loss(logits["prompt_harmful"], targets["prompt_harmful"],
                                             targets["prompt_harmful_mask"]),
        "categories": masked_multilabel_loss(logits["categories"], targets["categories"], targets["categories_mask"],
                                             pos_weight=weights.get("category_pos_weight", 1.0)),
        "response_refusal": masked_refusal_loss(logits["response_refusal"], targets["response_refusal"],
                                                targets["response_refusal_mask"]),
        "response_harmful": masked_binary_loss(logits["response_harmful"], targets["response_harmful"],
                                               targets["response_harmful_mask"]),
    }
    total = sum(weights.get(head, 1.0) * value for head, value in terms.items())
    return total, {head: float(value.detach()) for head, value in terms.items()}
