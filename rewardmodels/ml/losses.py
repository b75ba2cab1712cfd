"""The two losses, as small pure functions of score tensors."""

import torch
import torch.nn.functional as F


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, *, margin: torch.Tensor | None = None,
                       center_coefficient: float = 0.0) -> torch.Tensor:
    """-log σ(r_c - r_r - margin), averaged over the pairs; plus c·mean((r_c + r_r)²) to keep rewards centred
    (TRL's center_rewards_coefficient, Eisenstein et al. 2023).

    r_chosen, r_rejected: (B,) scalar rewards; margin: (B,) or None. Returns a scalar.
    """
    diff = r_chosen - r_rejected                                            # (B,)
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff).mean()
    if center_coefficient:
        loss = loss + center_coefficient * ((r_chosen + r_rejected) ** 2).mean()
    return loss


def cost_loss(c_more: torch.Tensor, c_less: torch.Tensor, sign_more: torch.Tensor, sign_less: torch.Tensor, *,
              sign_weight: float = 1.0) -> torch.Tensor:
    """Safe RLHF cost model loss (Dai et al. 2023): -log σ(c_more - c_less) - w·[log σ(s_more·c_more) + log σ(s_less·c_less)],
    averaged over the pairs, so that the more harmful reply costs more and cost > 0 means harmful.

    c_more, c_less: (B,) costs of the more / less harmful reply.
    sign_more, sign_less: (B,) +1 harmful, -1 safe, 0 unknown (an unknown reply adds no sign term).
    Returns a scalar; with every sign known it is exactly the Safe RLHF loss (w = 1).
    """
    pairwise = -F.logsigmoid(c_more - c_less)                               # (B,)
    signed = -F.logsigmoid(sign_more * c_more) * (sign_more != 0) \
             - F.logsigmoid(sign_less * c_less) * (sign_less != 0)          # (B,)
    return (pairwise + sign_weight * signed).mean()
