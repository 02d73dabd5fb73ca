"""The local AWS's identity: IAM policy evaluation, GitHub's OIDC issuer, STS web identity, and
CloudFormation acting as a principal. ``enforcement.IdentityEnforcement`` is the moto extension that
puts them in front of every request (LocalGround installs it unless told not to).

Modules import moto lazily where they can: the local GitHub imports ``oidc`` without moto's IAM.
"""
