-- Argo CD health of an llmops.dev Model. Healthy only when Ready is True for the current
-- generation with nothing rolling out; Suspended while a paused rollout waits on a person;
-- Degraded after a rollback or abort, or when the operator marks the Model Stalled (a False
-- Ready that no retry fixes). Reads only status the operator writes.
local hs = {}
local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local rollout = status.rollout or {}
local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")
local rolledBack = condition(status, "RolledBack")
if rollout.abort == true then
  hs.status = "Degraded"
  if rolledBack ~= nil and rolledBack.status == "True" then
    hs.message = "Rolled back (" .. rolledBack.reason .. "): " .. rolledBack.message
  else
    hs.message = "Rollout aborted: " .. (rollout.message or "")
  end
  return hs
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. stalled.message
  return hs
end
if status.phase == "Degraded" or status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "Model is " .. status.phase
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    hs.message = hs.message .. ": " .. ready.message
  end
  return hs
end
if rollout.pauseConditions ~= nil and #rollout.pauseConditions > 0 then
  local pause = rollout.pauseConditions[1]
  hs.status = "Suspended"
  hs.message = "Rollout paused (" .. pause.reason .. "): " .. (pause.message or "")
    .. "; promote or abort it with kubectl llmops"
  return hs
end
if status.canaryRevision ~= nil then
  hs.status = "Progressing"
  hs.message = "Rolling out revision " .. status.canaryRevision .. " at " .. (rollout.weight or 0)
    .. "% weight: " .. (rollout.message or "")
  return hs
end
if status.phase == "Ready" and ready ~= nil and ready.status == "True"
    and (ready.observedGeneration == nil or generation == nil or ready.observedGeneration == generation) then
  hs.status = "Healthy"
  hs.message = "Revision " .. (status.stableRevision or "") .. " serving with " .. (status.readyReplicas or 0)
    .. " ready replicas"
  return hs
end
hs.status = "Progressing"
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
else
  hs.message = "Model is " .. (status.phase or "Pending")
end
return hs
