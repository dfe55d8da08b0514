"""Model files: one asset per model role, fetched and verified into the models directory.

Each asset's data version is the file's sha256, so a new model file marks everything computed with
the old one (embeddings, patterns) as stale in the Dagster UI.
"""

import dagster as dg

from resources.models.files import ModelFilesResource
from resources.models.manifest import ROLES, Role

MODEL_FILES_CODE_VERSION = "1"


def _model_file_asset(role: Role) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"{role}_model_file",
        group_name="models",
        kinds={"llama.cpp", "gguf"},
        owners=["team:athena"],
        code_version=MODEL_FILES_CODE_VERSION,
        description=(
            f"The GGUF file of the {role} model named by the models manifest for the configured profile, "
            "fetched with resume, disk-space, size and sha256 checks."
        ),
        tags={"role": role},
    )
    def model_file(
        context: dg.AssetExecutionContext, model_files: ModelFilesResource
    ) -> dg.MaterializeResult:
        spec = model_files.spec(role)
        result = model_files.fetch(role, log=context.log.info)
        context.log.info(f"{spec.name}: {result.path} ({result.size_bytes} bytes, sha256 {result.sha256})")
        return dg.MaterializeResult(
            metadata={
                "model": spec.name,
                "profile": spec.profile,
                "path": dg.MetadataValue.path(str(result.path)),
                "size_bytes": dg.MetadataValue.int(result.size_bytes),
                "sha256": result.sha256,
                "source": spec.source,
                "reused": result.reused,
                "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
                "mb_per_s": dg.MetadataValue.float(round(result.mb_per_s, 2)),
                "context_length": dg.MetadataValue.int(spec.context_length),
                "embedding_dim": dg.MetadataValue.int(spec.embedding_dim or 0),
            },
            data_version=dg.DataVersion(result.sha256),
        )

    return model_file


model_file_assets = [_model_file_asset(role) for role in ROLES]
MODEL_FILE_KEYS: dict[Role, dg.AssetKey] = {role: dg.AssetKey(f"{role}_model_file") for role in ROLES}
